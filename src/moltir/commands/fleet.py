"""``moltir fleet report``: one table from the per-host results of a fleet-wide containment.

Pure functions (no click, no printing, no exit): :func:`merge` reads the results, :func:`render_text` and
:func:`render_markdown` format the report, :func:`exit_code` is the command's exit status.

The command line (:mod:`moltir.cli.fleet`)::

    moltir fleet report RESULTS... [--inventory FILE] [--json | --markdown]

``RESULTS`` are files or folders (a folder stands for the files directly in it, sorted by name). Each file
holds what hosts reported, in any of these forms, detected per file (and per line):

* moltir's own ``--json`` output, the ``moltir.result/1`` envelope of ``contain``, ``restore``, ``drill``,
  ``status`` or ``evidence export``; the host is the file's name (``results/web1.json`` is ``web1``: what
  the plain ssh loop writes with ``ssh web1 moltir contain --yes --json > results/web1.json``);
* a ``moltir.openclaw`` module result (the envelope under its ``moltir`` key): what the collection's
  playbooks save with ``-e moltir_results_dir=DIR`` (``DIR/HOST.contain.json``, naming the host), or what
  Ansible's ``tree`` callback writes (``ansible all -m moltir.openclaw.contain -t DIR``: one file per host);
* the output of Ansible's ``ansible.posix.json`` callback (``{"plays": [...], "stats": {...}}``) or
  ``ansible.posix.jsonl`` callback (one event per line): every moltir.openclaw task result of every host,
  and the hosts Ansible could not reach;
* JSONL: one of the above per line.

A file name ``HOST.contain.json`` (``.restore``, ``.drill``, ``.status``, ``.evidence``) names ``HOST``.
Results are applied in the order read (files as given, then lines and tasks in order): a later result of
the same host and install (profile) overrides the fields it carries and keeps the others, so a ``contain``,
a second ``contain`` that had nothing to do and an ``evidence_fetch`` make one row with the token
fingerprint of the first, the state of the second and the archive hash of the third.

One row per host and install: host, profile, state (contained, restored, failed, unreachable, a check-mode
prediction ...), contained? (yes / no / unknown), the gateway token's fingerprint (never the token),
credential status and findings when a result carries them (the deep audit's counts, a triage's findings), the
evidence archive's SHA-256 (and whether the controller verified it), the case id and the last message.

``--inventory FILE`` lists the hosts that should have reported: a JSON file from ``ansible-inventory -i INV
--list``, an Ansible INI inventory (hosts of every group section, ``web[1:3]`` ranges expanded,
``:vars``/``:children`` sections skipped) or a plain list (one host per line, ``#`` comments). Hosts listed
there without any result are reported under "did not report". A YAML inventory: convert it with
``ansible-inventory -i hosts.yml --list > hosts.json`` first.

Output: a plain-text table (default), ``--markdown`` (the same for an incident ticket), ``--json`` (the
report dict of :func:`merge` wrapped in moltir's usual ``moltir.result/1`` envelope, command ``fleet report``).

Exit codes: 0 every host reported and none failed or was unreachable; 6 (``fleet_incomplete``) at least one
host failed (a containment that did not hold among them), was unreachable or did not report (the report
names them; it is still printed in full); 2 bad input (a RESULTS path missing or unreadable, a file in which
no result is recognised, an unreadable or YAML inventory): nothing is printed but the error.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from moltir.errors import EXIT_FLEET_INCOMPLETE, EXIT_OK, usage_error
from moltir.text import shown

SCHEMA = "moltir.fleet/1"
ENVELOPE = "moltir.result/1"
DEFAULT_PROFILE = "default"
_SUFFIXES = (".contain", ".restore", ".drill", ".status", ".evidence", ".check")
_RUN_COMMANDS = ("contain", "restore", "drill")
Row = dict[str, Any]
#: moltir status's case status -> contained now? (None: it does not say)
_STATUS_CONTAINED = {"contained": True, "continued": True, "regressed": False, "failed": False, "restored": False,
                     "restored-by-later-case": False, "none": False, "audited": False}


# ---- reading ------------------------------------------------------------------------------------

def _files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out += sorted(c for c in p.iterdir() if c.is_file() and not c.name.startswith("."))
        elif p.is_file():
            out.append(p)
        else:
            raise usage_error(f"{p}: no such file or folder", "give the result files (or their folder)")
    return out


def _host_from_name(path: Path) -> str:
    name = path.name
    for ext in (".jsonl", ".json"):
        name = name.removesuffix(ext)
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _objects(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"{path}: cannot read it ({exc})") from None
    try:
        whole = json.loads(text)
    except ValueError:
        objs = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    objs.append(json.loads(line))
                except ValueError:
                    raise usage_error(f"{path}:{n}: not JSON and not a JSON line",
                                      "give moltir's --json output or the moltir.openclaw results") from None
        return objs
    return whole if isinstance(whole, list) else [whole]


def _results(obj: Any, default_host: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(host, result) pairs in ``obj``: an envelope, a module result, an ansible.posix.json output or a
    jsonl event. A result is an envelope, a module result (with ``moltir``), or ``{"unreachable": True}``."""
    if not isinstance(obj, dict):
        return
    if obj.get("schema") == ENVELOPE:
        yield default_host, {"moltir": obj}
    elif isinstance(obj.get("plays"), list):
        for play in obj["plays"]:
            for task in (play or {}).get("tasks") or []:
                yield from _host_results((task or {}).get("hosts"))
        yield from _stats(obj.get("stats"))
    elif "_event" in obj:
        yield from _host_results(obj.get("hosts"))
        yield from _stats(obj.get("stats"))
    elif isinstance(obj.get("moltir"), dict) or obj.get("unreachable") is True:
        yield str(obj.get("host") or default_host), obj


def _host_results(hosts: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for host, result in (hosts or {}).items() if isinstance(hosts, dict) else ():
        if isinstance(result, dict) and (isinstance(result.get("moltir"), dict) or result.get("unreachable") is True):
            yield str(host), result


def _stats(stats: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for host, counts in (stats or {}).items() if isinstance(stats, dict) else ():
        if isinstance(counts, dict) and counts.get("unreachable"):
            yield str(host), {"unreachable": True, "msg": "unreachable (Ansible's play recap)", "_stats": True}


def read_inventory(path: str | Path) -> list[str]:
    """The host names of an inventory (``ansible-inventory --list`` JSON, Ansible INI, or a plain list)."""
    p = Path(path)
    if p.suffix in (".yml", ".yaml"):
        raise usage_error(f"{p}: a YAML inventory is not read directly",
                          f"convert it: ansible-inventory -i {p} --list > hosts.json, and pass hosts.json")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"{p}: cannot read the inventory ({exc})") from None
    try:
        doc = json.loads(text)
    except ValueError:
        return _ini_hosts(text)
    if not isinstance(doc, dict):
        raise usage_error(f"{p}: not an ansible-inventory --list document")
    hosts: list[str] = list((doc.get("_meta") or {}).get("hostvars") or {})
    for name, group in doc.items():
        if name != "_meta" and isinstance(group, dict):
            hosts += [str(h) for h in group.get("hosts") or []]
    return list(dict.fromkeys(hosts))


def _ini_hosts(text: str) -> list[str]:
    hosts: list[str] = []
    section_ok = True  # host lines before any section (a plain list) count
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section_ok = not line[1:-1].endswith((":vars", ":children"))
            continue
        if section_ok:
            hosts += _expand(line.split()[0])
    return list(dict.fromkeys(hosts))


def _expand(pattern: str) -> list[str]:
    m = re.search(r"\[(\d+):(\d+)\]", pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo) if lo.startswith("0") else 0
    return [h for i in range(int(lo), int(hi) + 1)
            for h in _expand(pattern[:m.start()] + str(i).zfill(width) + pattern[m.end():])]


# ---- one result into a row ----------------------------------------------------------------------

def _installs(envelope: Mapping[str, Any], result: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(profile, data) per install a result speaks of (``--all-profiles`` runs and status speak of several)."""
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    assert isinstance(data, dict)
    if isinstance(data.get("installs"), list):
        out = []
        for inst in data["installs"]:
            if not isinstance(inst, dict):
                continue
            sub = inst.get("result") or inst.get("report") or {}
            if inst.get("error"):
                sub = {**sub, "_error": inst["error"]}
            prof = inst.get("profile") or (sub.get("install") or {}).get("profile") or inst.get("install")
            out.append((str(prof or DEFAULT_PROFILE), {**sub, "_exit": inst.get("exit_code"),
                                                        "_state_dir": inst.get("state_dir")}))
        return out
    install = data.get("install") if isinstance(data.get("install"), dict) else {}
    invocation = (result.get("invocation") or {}).get("module_args") or {}
    prof = (install or {}).get("profile") or result.get("profile") or invocation.get("profile")
    return [(str(prof or DEFAULT_PROFILE), dict(data))]


def _steps(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s.get("id")): s for s in data.get("steps") or [] if isinstance(s, dict)}


def _fingerprint(data: Mapping[str, Any]) -> str | None:
    for step in reversed(list(_steps(data).values())):
        details = step.get("details") or {}
        fp = details.get("new_fingerprint") or details.get("token_fingerprint")
        if isinstance(fp, str) and fp:
            return fp
    return None


def _findings(data: Mapping[str, Any]) -> dict[str, Any] | None:
    for step in reversed(list(_steps(data).values())):
        details = step.get("details") or {}
        if step.get("action") == "audit.run" and isinstance(details.get("counts"), dict):
            ids = [f.get("checkId") for f in details.get("critical") or [] if isinstance(f, dict)]
            return {"source": f"audit ({step.get('id')})", **{k: int(v) for k, v in details["counts"].items()
                                                                if isinstance(v, int)}, "critical_ids": ids}
    found = data.get("findings")
    if isinstance(found, list):  # moltir triage: findings with a level
        levels = Counter(str(f.get("level") or f.get("severity") or "unknown") for f in found if isinstance(f, dict))
        return {"source": "triage", **levels}
    return None


def _credentials(data: Mapping[str, Any]) -> dict[str, Any] | None:
    creds = data.get("credentials")
    if isinstance(creds, dict) and isinstance(creds.get("to_rotate"), list):  # moltir status: the case's inventory
        return {"inventoried": creds.get("count"), "to rotate": len(creds["to_rotate"])}
    if isinstance(creds, dict) and isinstance(creds.get("credentials"), list):
        creds = creds["credentials"]
    if isinstance(creds, list):
        states = Counter(str(c.get("status") or c.get("rotation") or ("exposed" if c.get("exposed_in") else "listed"))
                         for c in creds if isinstance(c, dict))  # moltir credentials [--case]: listed / exposed
        return {"total": sum(states.values()), **states}
    if isinstance(creds, dict):
        return dict(creds)
    steps = _steps(data).values()
    snap = next((s for s in steps if s.get("action") == "evidence.snapshot"), None)
    inv = next((s for s in steps if s.get("action") == "credentials.inventory"), None)
    listed = ((snap or {}).get("details") or {}).get("listed")
    count = ((inv or {}).get("details") or {}).get("count")
    out = {"listed": listed} if isinstance(listed, int) else {}
    if isinstance(count, int):  # the contain runbook's credentials step
        out["inventoried"] = count
    return out or None


def _state(command: str, data: Mapping[str, Any], ok: bool, dry: bool) -> tuple[str | None, bool | None]:
    """(state, contained?) a result says; None where it says nothing about it."""
    if dry:
        pending = [p for p in data.get("plan") or [] if isinstance(p, dict) and not p.get("already_done")]
        if not ok:
            return f"check failed ({command})", None
        if command == "contain":
            return ("check: would contain", False) if pending else ("check: contained, nothing to do", True)
        return (f"check: would {command}" if pending else f"check: {command} has nothing to do"), None
    if command == "status":
        status = str(data.get("status") or "unknown")
        return status, _STATUS_CONTAINED.get(status)
    if command == "contain":
        return ("contained", True) if ok else ("failed", False)
    if command == "restore":
        return ("restored", False) if ok else ("restore failed", None)
    if command == "drill":
        return ("drilled", False) if ok else ("drill failed", None)
    return None, None


def _apply(row: Row, result: Mapping[str, Any], source: str) -> None:
    """Fold one (host, install) result into its row."""
    row["sources"] = list(dict.fromkeys([*row.get("sources", []), source]))
    if result.get("unreachable") is True:
        if result.get("_stats") and row.get("state") is not None:
            return  # the recap counts a host that reported earlier in the same play: keep its result
        row.update(state="unreachable", contained=None, rc=None, changed=None, message=shown(result.get("msg") or ""))
        row["runs"].append({"command": "ansible", "state": "unreachable"})
        return
    envelope = result["moltir"]
    command = str(envelope.get("command") or result.get("command") or "?")
    data = result.get("_data") if isinstance(result.get("_data"), dict) else {}
    assert isinstance(data, dict)
    exit_code = data.get("_exit") if isinstance(data.get("_exit"), int) else envelope.get("exit_code")
    ok = exit_code == 0 and not data.get("_error")
    dry = bool(result.get("dry_run")) or data.get("status") == "dry-run"
    state, contained = _state(command.split()[0], data, ok, dry)
    if state is not None:
        row["state"] = state
        if contained is not None or not ok:
            row["contained"] = contained
    if command.split()[0] in (*_RUN_COMMANDS, "status"):
        row["rc"], row["changed"] = exit_code, result.get("changed")
        row["command"] = command + (" --check" if dry else "")
    for key, value in (("token_fingerprint", _fingerprint(data)), ("findings", _findings(data)),
                       ("credentials", _credentials(data)), ("case_id", data.get("case_id") or
                                                             (data.get("case") or {}).get("id")),
                       ("state_dir", data.get("_state_dir") or (data.get("install") or {}).get("state_dir"))):
        if value:
            row[key] = value
    if command == "evidence export" and ok:
        row["evidence"] = {"sha256": data.get("sha256"), "size": data.get("size"), "archive": result.get("dest")
                           or data.get("archive"), "verified": result.get("verified"),
                           "encrypted": bool(data.get("encrypted"))}
        row["case_id"] = result.get("case_id") or Path(str(data.get("case_dir") or "")).name or row.get("case_id")
    errors = [dict(e) for e in envelope.get("errors") or [] if isinstance(e, dict)]
    if data.get("_error"):
        errors.append(dict(data["_error"]))
    message = (errors[0].get("message") if errors else None) or data.get("message") or result.get("msg")
    if message:
        row["message"] = shown(message, 1000)
    row["errors"] += [{"command": command, **{k: shown(v, 1000) if isinstance(v, str) else v for k, v in e.items()}}
                      for e in errors]
    row["runs"].append({"command": command, "rc": exit_code, "changed": result.get("changed"), "dry_run": dry,
                        "state": state})


def _new_row(host: str, profile: str) -> Row:
    return {"host": host, "profile": profile, "state": None, "contained": None, "command": None, "rc": None,
            "changed": None, "token_fingerprint": None, "credentials": None, "findings": None, "evidence": None,
            "case_id": None, "state_dir": None, "message": None, "errors": [], "runs": [], "sources": []}


# ---- the report ---------------------------------------------------------------------------------

def merge(paths: Iterable[str | Path], inventory: Iterable[str] | None = None) -> dict[str, Any]:
    """One report from the result files/folders ``paths`` (see the module docstring), plus the hosts of
    ``inventory`` (host names, e.g. from :func:`read_inventory`) that did not report. Raises
    :class:`moltir.errors.MoltirError` (exit 2) on unreadable input or a file with no recognisable result."""
    rows: dict[tuple[str, str], Row] = {}
    sources = []
    for path in _files(paths):
        found = 0
        for obj in _objects(path):
            for host, result in _results(obj, _host_from_name(path)):
                found += 1
                if result.get("unreachable") is True:
                    targets = [k for k in rows if k[0] == host] or [(host, DEFAULT_PROFILE)]
                    for key in targets:
                        _apply(rows.setdefault(key, _new_row(*key)), result, str(path))
                    continue
                for profile, data in _installs(result["moltir"], result):
                    key = (host, profile)
                    _apply(rows.setdefault(key, _new_row(*key)), {**result, "_data": data}, str(path))
        if not found:
            raise usage_error(f"{path}: no moltir result in it",
                              "give moltir's --json output, the moltir.openclaw task results (moltir_results_dir, "
                              "the tree callback) or ansible.posix.json/jsonl output")
        sources.append({"path": str(path), "results": found})
    reported = sorted({h for h, _ in rows}, key=_natural)
    missing = [h for h in dict.fromkeys(inventory or []) if h not in reported]
    table = [rows[k] for k in sorted(rows, key=lambda k: (_natural(k[0]), _natural(k[1])))]
    summary = {"hosts": len(reported), "installs": len(table), "missing": len(missing),
               "contained": sum(1 for r in table if r["contained"] is True),
               "not_contained": sum(1 for r in table if r["contained"] is False),
               "failed": sum(1 for r in table if _failed(r)),
               "unreachable": sum(1 for r in table if r["state"] == "unreachable")}
    report: dict[str, Any] = {"schema": SCHEMA, "hosts": table, "missing": missing, "summary": summary,
                              "sources": sources}
    report["ok"] = exit_code(report) == EXIT_OK
    return report


def _natural(text: str) -> list[Any]:
    """``h2`` before ``h10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text) if part]


def _failed(row: Mapping[str, Any]) -> bool:
    return row.get("state") == "unreachable" or (isinstance(row.get("rc"), int) and row["rc"] != 0) or \
        str(row.get("state") or "").endswith("failed")


def exit_code(report: Mapping[str, Any]) -> int:
    """0 when every host reported and none failed or was unreachable, else 6 (see the module docstring)."""
    bad = report.get("missing") or any(_failed(r) for r in report.get("hosts") or [])
    return EXIT_FLEET_INCOMPLETE if bad else EXIT_OK


def _cells(row: Mapping[str, Any]) -> dict[str, str]:
    contained = "yes" if row.get("contained") is True else "no" if row.get("contained") is False else "unknown"
    findings = row.get("findings") or {}
    fnd = ", ".join(f"{findings[k]} {k}" for k in ("critical", "high", "warn", "medium", "info", "low")
                    if isinstance(findings.get(k), int)) or "-"
    if findings.get("critical_ids"):
        fnd += f" ({', '.join(map(str, findings['critical_ids'][:3]))})"
    creds = row.get("credentials") or {}
    cred = ", ".join(f"{v} {k}" for k, v in creds.items()) or "-"
    ev = row.get("evidence") or {}
    sha = ev.get("sha256") or "-"
    if ev.get("verified") is True:
        sha += " (verified)"
    return {"host": row["host"], "profile": row["profile"], "state": row.get("state") or "-", "contained": contained,
            "token": row.get("token_fingerprint") or "-", "credentials": cred, "findings": fnd, "evidence": sha,
            "case": row.get("case_id") or "-"}


_COLUMNS = (("host", "HOST"), ("profile", "PROFILE"), ("state", "STATE"), ("contained", "CONTAINED"),
            ("token", "TOKEN"), ("credentials", "CREDENTIALS"), ("findings", "FINDINGS"), ("case", "CASE"),
            ("evidence", "EVIDENCE SHA-256"))


def _headline(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    parts = [f"{s['hosts']} host(s) reported ({s['installs']} install(s))", f"{s['contained']} contained"]
    parts += [f"{s[k]} {w}" for k, w in (("failed", "failed"), ("unreachable", "unreachable"),
                                         ("missing", "did not report")) if s[k]]
    return "moltir fleet report: " + ", ".join(parts)


def problems(report: Mapping[str, Any]) -> list[str]:
    """One line per host that failed or was unreachable in its latest result (its last message and hint). An
    error of an earlier run that a later one put right (a contain that failed, then held) stays in the row's
    ``errors`` and ``runs``, not here."""
    out = []
    for row in report["hosts"]:
        if _failed(row):
            last = row["errors"][-1] if row.get("errors") else {}
            hint = f" (hint: {last['hint']})" if last.get("hint") else ""
            out.append(f"{row['host']} [{row['profile']}] {row.get('command') or last.get('command') or ''}"
                       f"{' rc ' + str(row['rc']) if row.get('rc') is not None else ''}: "
                       f"{row.get('message') or last.get('message') or row.get('state')}{hint}")
    return [shown(line, 1500) for line in out]


def render_text(report: Mapping[str, Any]) -> str:
    """The report for a terminal: a headline, an aligned table, the hosts that did not report, the errors."""
    cells = [{k: shown(v, 200) for k, v in _cells(r).items()} for r in report["hosts"]]
    widths = {k: max([len(h), *(len(c[k]) for c in cells)]) for k, h in _COLUMNS}
    lines = [_headline(report), ""]
    lines.append("  ".join(h.ljust(widths[k]) for k, h in _COLUMNS).rstrip())
    lines += ["  ".join(c[k].ljust(widths[k]) for k, _ in _COLUMNS).rstrip() for c in cells]
    if report["missing"]:
        lines += ["", "did not report: " + ", ".join(shown(h, 200) for h in report["missing"])]
    found = problems(report)
    if found:
        lines += ["", "problems:"] + [f"  {p}" for p in found]
    return "\n".join(lines) + "\n"


def _md(text: object) -> str:
    return shown(text, 300).replace("|", "\\|")


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown (an incident ticket): headline, table, did not report, problems."""
    lines = [f"## {_md(_headline(report))}", ""]
    lines.append("| " + " | ".join(h.title() if k != "evidence" else "Evidence SHA-256" for k, h in _COLUMNS) + " |")
    lines.append("|" + "---|" * len(_COLUMNS))
    for row in report["hosts"]:
        c = _cells(row)
        lines.append("| " + " | ".join(f"`{_md(c[k])}`" if k in ("token", "evidence", "case") and c[k] != "-"
                                        else _md(c[k]) for k, _ in _COLUMNS) + " |")
    if report["missing"]:
        lines += ["", "**Did not report:** " + ", ".join(_md(h) for h in report["missing"])]
    found = problems(report)
    if found:
        lines += ["", "**Problems:**", ""] + [f"- {_md(p)}" for p in found]
    return "\n".join(lines) + "\n"


__all__ = ["SCHEMA", "exit_code", "merge", "problems", "read_inventory", "render_markdown", "render_text"]
