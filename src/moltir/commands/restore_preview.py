"""What ``moltir restore`` will change for a case, shown before it asks (:func:`describe_restore`).

Restore never brings the old token back: the gateway comes back on the NEW token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir.engine.case import Case
from moltir.engine.runbook import Runbook, Step
from moltir.errors import MoltirError
from moltir.openclaw import Install

_ABSENT = ("absent", "<absent>", "__absent__")


def _dm_entries(section: Any) -> list[tuple[str, Any, bool]]:
    """(path, old value, had_value) for every recorded DM/group-policy path, best effort."""
    out: list[tuple[str, Any, bool]] = []
    seen: set[str] = set()

    def path_of(node: Mapping[str, Any]) -> str | None:
        p = node.get("path")
        if isinstance(p, list) and all(isinstance(x, str | int) for x in p):
            p = ".".join(str(x) for x in p)
        return p if isinstance(p, str) and p.startswith("channels.") else None

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            p = path_of(node)
            if p is not None and p not in seen:
                seen.add(p)
                for key in ("old", "before", "old_value", "previous", "value"):
                    if key in node:
                        old = node[key]
                        if isinstance(old, Mapping) and set(old) == {"value"}:  # dm_policy.set: {"value": v}
                            old = old["value"]
                            out.append((p, old, True))
                            break
                        absent = (old is None and node.get("existed") is False) or old in _ABSENT or \
                            node.get("absent") is True or node.get("existed") is False
                        out.append((p, old, not absent))
                        break
                else:
                    out.append((p, None, not (node.get("absent") is True or node.get("existed") is False)))
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(section)
    return out


def _gateway_line(section: Any) -> str:
    """How ``gateway.start`` will bring the gateway back, from what ``gateway.stop`` recorded."""
    if not isinstance(section, Mapping):
        return "gateway: started in the foreground (`openclaw gateway run`): how it ran before was not recorded"
    if section.get("was_running") is False:
        return "gateway: was not running before containment; it stays stopped"
    service = section.get("service")
    mode = section.get("mode")
    if isinstance(service, Mapping) and service.get("name"):
        manager = service.get("manager") or mode
        undo = []
        if service.get("masked"):
            undo.append("unmasked")
        if service.get("disabled"):
            undo.append("re-enabled")
        how = ", ".join([*undo, "started"])
        return f"gateway: {manager} service {service['name']} {how}, as before containment"
    argv = section.get("argv")
    cmd = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)) if isinstance(argv, list) and \
        all(isinstance(a, str) for a in argv) and argv else "openclaw gateway run"
    port = section.get("port")
    return (f"gateway: relaunched in the background (`{cmd}`) with the environment it had"
            + (f", on port {port}" if port else ""))


def _fp(section: Mapping[str, Any], *keys: str) -> str | None:
    for k in keys:
        v = section.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def _running_gateway(install: Install | None) -> str | None:
    """A label for this install's gateway when one runs now, else None (never raises)."""
    if install is None:
        return None
    try:
        from moltir.openclaw import processes as proc

        gws = proc.find_gateways(install)
    except MoltirError:
        return None
    return f"pid {gws[0].pid}" if gws else None


def _is_dm(dotted: str) -> bool:
    return dotted.endswith(".dmPolicy") or dotted.endswith(".dm.policy")

def describe_restore(case: Case, runbook: Runbook | None = None, install: Install | None = None,
                     reopen_open: str = "open") -> list[str]:
    """What ``moltir restore`` will change for this case, one line per effect.

    Decision: the preview says what the run will really do, not what the shipped runbook does in
    the usual case. With ``runbook`` it describes only the steps that runbook has (a copy without
    ``token.verify`` promises no proof); with ``install`` it sees a gateway already running. When
    containment found the gateway stopped (``gateway.stop`` recorded ``was_running: false``),
    ``gateway.start`` leaves it stopped, so the token cannot be proven live (``token.verify`` skips)
    and the final audit runs with the gateway down and expects it so (``audit.run``'s
    ``_left_stopped``): the preview says exactly that instead of "with the gateway up".
    """
    data = case.restore_data()
    by_action: dict[str, Step] | None = None
    if runbook is not None:
        by_action = {}
        for step in runbook.steps:
            by_action.setdefault(step.action, step)
    gw = data.get("gateway")
    left_stopped = isinstance(gw, Mapping) and gw.get("was_running") is False
    lines = [f"case {case.id}:", *_dm_lines(data.get("dm_policy"), _has(by_action, "dm_policy.restore"),
                                            reopen_open)]
    up, gateway = _gateway_preview(gw, by_action, install, left_stopped)
    lines.append(gateway)
    ledger = _ledger_line(case.dir) if up else None
    if ledger:
        lines.append(ledger)
    lines.append(_token_line(data.get("token"), _has(by_action, "token.verify"), up))
    lines.append(_audit_line(by_action, up, left_stopped))
    return lines


def _ledger_line(case_dir: Path) -> str | None:
    """What starting the gateway does to the audit ledger, from what the case's snapshot recorded
    (manifest ``audit_ledger``, :mod:`moltir.evidence.ledger`); None when the release has no ledger."""
    import json

    try:
        info = json.loads((case_dir / "manifest.json").read_bytes()).get("audit_ledger")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(info, Mapping) or not (info.get("release_has_ledger") or info.get("exported")):
        return None
    kept = (f"the case keeps the copy taken at containment: {info['exported']} ({info.get('rows', 0)} rows)"
            if isinstance(info.get("exported"), str) else "the case keeps the copied state/openclaw.sqlite")
    return ("audit ledger: starting the gateway prunes it (rows older than 30 days, beyond 100,000); " + kept)


def _has(by_action: Mapping[str, Step] | None, action: str) -> bool:
    """Whether the runbook has a step of ``action`` (no runbook: the shipped one, which has them all)."""
    return by_action is None or action in by_action


def _dm_lines(dm: Any, restores: bool, reopen_open: str) -> list[str]:
    """The DM policies: each recorded path and what it goes back to; a warning for those reopened."""
    if dm is not None and not restores:
        return ["DM policies: left disabled (this runbook has no dm_policy.restore step)"]
    if dm is None:
        return ["DM policies: nothing recorded, left as they are"]
    lines: list[str] = []
    entries = _dm_entries(dm)
    reopened = [path for path, old, had in entries if had and old == "open" and _is_dm(path)]
    if reopened and reopen_open == "open":
        lines.append(f"WARNING: {len(reopened)} DM path(s) go back to 'open': ANYONE can write to the assistant "
                     "again (" + ", ".join(reopened[:4]) + (" ..." if len(reopened) > 4 else "") + "); "
                     "'moltir restore --reopen-open=pairing' puts them back as 'pairing' instead")
    if not entries:
        return [*lines, "DM policies: back to their pre-incident values"]
    lines.append(f"DM policies: {len(entries)} path(s) back to their pre-incident values:")
    for path, old, had in entries:
        new = reopen_open if (had and old == "open" and _is_dm(path)) else old
        note = " (anyone can write to the bot)" if new == "open" and _is_dm(path) else ""
        note = f" (was 'open'; --reopen-open={reopen_open})" if new != old else note
        lines.append(f"  {path}: disabled -> {new!r}{note}" if had else
                     f"  {path}: key removed (moltir inserted it)")
    return lines


def _gateway_preview(gw: Any, by_action: Mapping[str, Step] | None, install: Install | None,
                     left_stopped: bool) -> tuple[bool, str]:
    """(whether the gateway will be up after restore, the line saying how)."""
    running = _running_gateway(install)
    start = by_action.get("gateway.start") if by_action is not None else None
    override = start is not None and bool(start.params.get("command"))
    if not _has(by_action, "gateway.start"):
        up = running is not None
        return up, ("gateway: this runbook has no gateway.start step: "
                    + (f"it keeps running ({running})" if up else "it stays stopped"))
    if running is not None:
        return True, (f"gateway: already running ({running}): left as it is; restore checks that it accepts "
                      "the new token")
    if left_stopped and not override:
        return False, _gateway_line(gw)
    return True, ("gateway: launched with the runbook's command (gateway.start with: {command})" if override
                  else _gateway_line(gw))


def _token_line(tok: Any, verifies: bool, up: bool) -> str:
    """The token: the gateway keeps the new one; whether restore proves it live."""
    if not isinstance(tok, Mapping):
        return ("token: the gateway keeps the NEW token; the old one stays refused" if tok is not None
                else "token: not rotated in this case; unchanged")
    new = _fp(tok, "new_fingerprint", "fingerprint")
    prev = tok.get("previous")
    old = _fp(prev, "token_fingerprint") if isinstance(prev, Mapping) else _fp(tok, "old_fingerprint")
    line = ("token: the gateway keeps the NEW token" + (f" (fingerprint {new})" if new else "")
            + "; the old token" + (f" ({old})" if old else "") + " stays refused: restore never brings it back.")
    if not verifies:
        return line + " Not proven live: this runbook has no token.verify step"
    if not up:
        return line + (" Not proven live: the gateway stays stopped (it reads the new token at its next start; "
                       "'moltir drill' proves it then)")
    return line + (" Then proven on the live gateway: new accepted, and old refused when the case can still "
                   "recover the old token (restore says if it could not)")


def _audit_line(by_action: Mapping[str, Step] | None, up: bool, left_stopped: bool) -> str:
    """The final audit: deep or not, with the gateway up or down, and whether its findings gate."""
    audit_step = by_action.get("audit.run") if by_action is not None else None
    if by_action is not None and audit_step is None:
        return "then: no final audit (this runbook has no audit.run step)"
    params: Mapping[str, Any] = audit_step.params if audit_step is not None else \
        {"deep": True, "expect_gateway": "up", "fail_on": "never"}
    deep = params.get("deep", True) is not False
    expect = str(params.get("expect_gateway", "auto"))
    fail_on = str(params.get("fail_on", "critical"))
    what = "a deep security audit" if deep else "a security audit"
    if up:
        where = "with the gateway up" + (" (its probe must authenticate with the new token)"
                                         if deep and expect == "up" else "")
    elif left_stopped and expect != "down":
        where = ("with the gateway stopped, as before containment (the audit expects it down: its probe "
                 "finding no gateway is not a failure)")
    elif expect == "up" and deep:
        where = "with the gateway stopped: its probe must reach the gateway, so this step will fail"
    else:
        where = "with the gateway stopped"
    gate = "findings are listed, not gating" if fail_on == "never" else f"unexpected {fail_on} findings fail it"
    return f"then: {what} {where}, kept in the case; {gate}"
