"""``moltir credentials``: every credential the install holds; with ``--case``, where each leaked.

Without a case: the install's inventory (:func:`moltir.openclaw.credentials.inventory`), fingerprinted
under a random key made for this run only (fingerprints of two runs do not compare; those of one
case do). With a case (read-only): the values the case's copied config can give (the active config
with its ``$include`` files, OpenClaw's backups of it, and ``preimage/`` -- the config before contain
changed it, so the old gateway token too) are matched, in memory, against every copied file
(:func:`moltir.evidence.exposure.scan_case`); fingerprints are under the case's key when the case has
an inventory (``credentials.inventory``), else under a per-run key. The list is ranked: exposed first
(transcripts and logs before copies), then plaintext, then the rest.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir.commands.credentials_case import case_credentials
from moltir.evidence import masks as masking
from moltir.evidence.exposure import Needle, scan_case
from moltir.keystore.launcher import PROVIDER_ALIAS
from moltir.openclaw import credentials as creds

if TYPE_CHECKING:
    from moltir.openclaw import Install

_RANK_HOW = (masking.HOW, "transcript_events row", "transcript line", "gateway log line", "systemd journal record")


def inventory_report(install: Install) -> dict[str, Any]:
    notes: list[str] = []
    found = creds.inventory(install, notes)
    return {"install": str(install.state_dir), "config": str(install.config_path), "notes": notes,
            "fingerprint_key": "per-run (random, not kept: fingerprints compare within this output only)",
            "credentials": creds.records(found, secrets.token_bytes(32))}


def _case_key(case_dir: Path) -> tuple[bytes, str]:
    try:
        return (case_dir / creds.CASE_KEY).read_bytes(), f"the case's ({creds.CASE_KEY})"
    except OSError:
        return secrets.token_bytes(32), "per-run (the case has no credential inventory)"


def _listed(case_dir: Path) -> list[dict[str, Any]]:
    """The inventory ``credentials.inventory`` wrote into the case (empty when it did not run)."""
    try:
        data = json.loads((case_dir / creds.CASE_INVENTORY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("credentials") if isinstance(data, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _score(rec: dict[str, Any]) -> tuple[int, int, str]:
    hits = rec.get("exposed_in") or []
    if any(h.get("how") in _RANK_HOW for h in hits):
        tier = 0
    elif hits:
        tier = 1
    elif rec.get("storage") == "plaintext":
        tier = 2
    else:
        tier = 3
    return tier, -len(hits), str(rec.get("id"))


def _masks_answer(case_dir: Path) -> tuple[bool, str]:
    """Whether the case's release masks secrets in transcripts (capability ``transcript_masks``, from
    the release ``case.json`` recorded), and where that answer came from."""
    from moltir.openclaw.capabilities import for_install

    try:
        info = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    oc = info.get("openclaw") if isinstance(info, dict) else None
    oc = oc if isinstance(oc, dict) else {}
    version = oc.get("version") if isinstance(oc.get("version"), str) else None
    product = str(oc.get("product") or "openclaw")
    answer = for_install(product, version, "case.json", package_root=None, state_dir=None).answer("transcript_masks")
    return bool(answer.value), answer.source


def case_report(case_dir: Path) -> dict[str, Any]:
    """The case's credentials, each with ``exposed_in``, ranked "rotate these first"."""
    key, key_note = _case_key(case_dir)
    resolved = case_credentials(case_dir)
    masks, masks_source = _masks_answer(case_dir)
    scan = scan_case(case_dir, [Needle(c.cred.id, c.cred.value, c.skip) for c in resolved if c.cred.value],
                     masks=masks)
    by_id: dict[str, dict[str, Any]] = {}
    for rec in _listed(case_dir):
        rec = {**rec, "exposed_in": None, "searched": False}
        by_id[str(rec.get("id"))] = rec
    for item in resolved:
        rec = creds.records([item.cred], key)[0]
        rec["location"]["case_path"] = item.case_path
        old = by_id.get(item.cred.id)
        if old is not None and old.get("fingerprint") not in (None, rec["fingerprint"]):
            rec["note"] = "differs from the inventory's value (changed during containment)"
        searchable = bool(item.cred.value) and len(item.cred.value or "") >= 8
        rec["exposed_in"] = scan.hits.get(item.cred.id, []) if searchable else None
        rec["searched"] = searchable
        by_id[item.cred.id] = {**(old or {}), **rec}
    ranked = sorted(by_id.values(), key=_score)
    exposed = [r["id"] for r in ranked if r.get("exposed_in")]
    return {"case": str(case_dir), "fingerprint_key": key_note, "files_searched": scan.files,
            "notes": scan.notes, "exposed": exposed, "rotate_first": [r["id"] for r in ranked],
            "masked_spans": {"searched": masks, "why": masks_source, "unattributed": scan.unattributed},
            "credentials": ranked}


_BY = {"api": "revocation API", "person": "a person revokes it", "local": "local: rotate it",
       "unknown": "revocation unknown"}


def _line(rec: dict[str, Any]) -> list[str]:
    from moltir.text import shown

    loc = rec.get("location") or {}
    fp = rec.get("fingerprint") or "value not readable here"
    revoke = rec.get("revocation") or {}
    api = _BY.get(str(revoke.get("by")), "revocation unknown")
    head = (f"{shown(rec.get('id'), 200)}  [{shown(rec.get('kind'), 60)}, {shown(rec.get('provider'), 60)}, "
            f"{shown(rec.get('storage'), 20)}]  {shown(fp, 60)}  ({api})")
    lines = [head, f"    in {shown(loc.get('file'), 300)} at {shown(loc.get('key'), 200)}"]
    if rec.get("ref"):
        lines.append(f"    refers to {shown(rec['ref'], 200)}")
    for hit in rec.get("exposed_in") or []:
        lines.append(f"    EXPOSED: {_hit(hit)}")
    return lines


def _hit(hit: dict[str, Any]) -> str:
    from moltir.text import shown

    where = f"line {hit['line']}" if "line" in hit else shown(hit.get("row"), 200)
    extra = f", {shown(hit['tool'], 60) or 'a tool'}, at {shown(hit.get('time'), 40) or 'an unknown time'}" \
        if hit.get("how") == masking.HOW else ""
    return f"{shown(hit.get('path'), 300)} {where} ({shown(hit.get('how'), 200)}{extra})"


def render(report: dict[str, Any]) -> str:
    """The report for people: one block per credential (ranked when it comes from a case)."""
    from moltir.text import shown

    items = report.get("credentials") or []
    if "case" in report:
        head = [f"case {shown(report['case'], 300)}: {len(items)} credential(s), "
                f"{len(report.get('exposed') or [])} exposed in {report.get('files_searched', 0)} file(s) searched; "
                "rotate these first:"]
        head += [f"note: {shown(n, 300)}" for n in report.get("notes") or []]
        masked = (report.get("masked_spans") or {}).get("unattributed") or []
        head += [f"MASKED SECRET, credential not identified: {_hit(h)}" for h in masked]
    else:
        head = [f"{len(items)} credential(s) of {shown(report.get('install'), 300)} "
                "(fingerprints: HMAC-SHA-256 under a key of this run only)"]
        head += [f"note: {shown(n, 300)}" for n in report.get("notes") or []]
    body = [line for rec in items for line in _line(rec)]
    return "\n".join(head + body)


def _rotated_here(case_dir: Path) -> set[str]:
    """The gateway tokens this case made: their journal fingerprints (``token.generated``) and, for a
    token kept in the keyring, the SecretRef moltir wrote (``exec:moltir:<entry>``: the inventory holds
    no value for it, so no fingerprint)."""
    found: set[str] = set()
    try:
        lines = (case_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("event") == "token.generated" and rec.get("new_fingerprint"):
            found.add(str(rec["new_fingerprint"]))
        details = rec.get("details") if isinstance(rec, dict) and rec.get("action") == "token.rotate" else None
        entry = details.get("keyring_entry") if isinstance(details, dict) else None
        if rec.get("event") == "step.done" and isinstance(entry, str) and "/" in entry:
            found.add(f"exec:{PROVIDER_ALIAS}:{entry.split('/', 1)[1]}")
    return found


def _case_state_dir(case_dir: Path) -> str:
    try:
        info = json.loads((case_dir / "case.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    oc = info.get("openclaw") if isinstance(info, dict) else None
    return str(oc.get("state_dir") or "") if isinstance(oc, dict) else ""


def next_steps(case_dir: Path) -> dict[str, Any] | None:
    """What the case's inventory leaves to rotate (``moltir status``, the end of ``contain``): every
    credential but the gateway token this case already rotated and those ``moltir rotate`` rotated and
    proved (:mod:`moltir.commands.rotations`); each with its state (``pending a person``: rotated, the old
    one still to be revoked by a person; ``not rotated``). None without an inventory."""
    from moltir.commands import rotations

    listed = _listed(case_dir)
    if not listed and not (case_dir / creds.CASE_INVENTORY).is_file():
        return None
    made = _rotated_here(case_dir)
    done = rotations.load(_case_state_dir(case_dir))
    by_case = [r for r in listed if r.get("kind") == "gateway_token"
               and (r.get("journal_fingerprint") in made or r.get("ref") in made)]
    todo = [r for r in listed if r not in by_case and rotations.state_of(done, str(r.get("id"))) != rotations.ROTATED]
    rotated = [str(r.get("id")) for r in by_case]
    return {"file": creds.CASE_INVENTORY, "count": len(listed), "rotated_by_this_case": rotated,
            "rotated_by_moltir_rotate": sorted(k for k, v in done.items() if v.get("state") == rotations.ROTATED),
            "to_rotate": [{"id": r.get("id"), "kind": r.get("kind"), "provider": r.get("provider"),
                           "state": rotations.state_of(done, str(r.get("id"))),
                           "revocation_api": (r.get("revocation") or {}).get("api"),
                           "revoked_by": (r.get("revocation") or {}).get("by")} for r in todo],
            "command": f"moltir credentials --case {case_dir}"}


def render_next_steps(steps: dict[str, Any], limit: int = 15) -> list[str]:
    from moltir.text import shown

    todo = steps["to_rotate"]
    if not todo:
        return [f"credentials: {steps['count']} listed, none left to rotate"]

    lines = [f"next: rotate {len(todo)} credential(s) ('{shown(steps['command'], 400)}' ranks them by where "
             "they leaked):"]
    lines += [f"  {shown(t['id'], 200)}  ({shown(t['provider'], 60)}; {_BY.get(str(t['revoked_by']), '?')})"
              f"  {shown(t.get('state') or 'not rotated', 40)}" for t in todo[:limit]]
    if len(todo) > limit:
        lines.append(f"  ... and {len(todo) - limit} more")
    return lines
