"""``moltir rotate plan``: each credential of the inventory with how moltir would rotate it.

Changes nothing. Fingerprints are under a key of this run only (like ``moltir credentials``). For each
credential: the inventory record, then ``rotation``: ``by`` (``moltir rotate``, ``contain`` for the
gateway token, or ``hand``), where the new value is validated, where it is stored, how the running
gateway re-reads it, and who can revoke the old one (:mod:`moltir.openclaw.rotation_table`).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from moltir.openclaw import credentials as creds
from moltir.openclaw import rotation_table

if TYPE_CHECKING:
    from moltir.openclaw import Install


def plan_report(install: Install) -> dict[str, Any]:
    notes: list[str] = []
    found = creds.inventory(install, notes)
    config = install.read_config() if install.config_path.is_file() else {}
    key = secrets.token_bytes(32)
    out = []
    for cred, rec in zip(found, creds.records(found, key), strict=True):
        t = rotation_table.target(install, config, cred)
        revoke = rec.get("revocation") or {}
        if t is not None:
            rotation: dict[str, Any] = {"by": "moltir rotate", "command": f"moltir rotate {cred.id}",
                                        **t.describe()}
        elif cred.kind == "gateway_token":
            rotation = {"by": "contain", "command": "moltir contain", "how": rotation_table.by_hand(cred)}
        else:
            rotation = {"by": "hand", "command": None, "how": rotation_table.by_hand(cred)}
        rotation["revoke_old"] = revoke
        out.append({**rec, "rotation": rotation})
    return {"install": str(install.state_dir), "config": str(install.config_path),
            "release": install.version, "notes": notes,
            "fingerprint_key": "per-run (random, not kept: fingerprints compare within this output only)",
            "credentials": out}


def render_plan(report: dict[str, Any]) -> str:
    from moltir.text import shown

    items = report.get("credentials") or []
    lines = [f"{len(items)} credential(s) of {shown(report.get('install'), 300)} "
             f"(openclaw {shown(report.get('release') or 'release unknown', 40)}); nothing changed:"]
    lines += [f"note: {shown(n, 300)}" for n in report.get("notes") or []]
    for rec in items:
        rot = rec["rotation"]
        lines.append(f"{shown(rec.get('id'), 200)}  [{shown(rec.get('kind'), 60)}, {shown(rec.get('provider'), 60)}]"
                     f"  {shown(rec.get('fingerprint') or 'value not readable here', 80)}")
        if rot["by"] == "moltir rotate":
            lines.append(f"    rotate: {shown(rot['command'], 300)} (new value from a hidden prompt or --from-stdin)")
            lines.append(f"    validate: {shown(rot['validate'], 300)}")
            lines.append(f"    store: {shown(rot['store_where'], 300)}")
            lines.append(f"    re-read: {shown(rot['reload'], 300)}")
        else:
            lines.append(f"    rotate: {shown(rot['how'], 400)}")
        lines.append(f"    revoke the old one: {shown(rot['revoke_old'].get('how'), 300)}")
    return "\n".join(lines)


def run_rotation(install: Install, cred_id: str, value: str, options: Any, *, command: str,
                 note: Any, emit: Any, revoke_old: bool = False, wait: bool = True,
                 wait_timeout_s: float = 600.0) -> Any:
    """``moltir rotate CREDENTIAL-ID``: one ``credential.rotate`` step in its own case (kind ``rotate``:
    never the incident case ``status`` and ``restore`` act on). ``value`` reaches the action in memory
    only (:data:`moltir.actions.credential_rotate.INBOX`), and is gone from it when this returns. Then
    (:mod:`moltir.commands.revoke_wait`) the old value is checked at the issuer where it can tell."""
    from moltir.actions import credential_rotate
    from moltir.commands import run as runner
    from moltir.engine.runbook import Runbook, Step
    from moltir.redaction import register

    register(value)
    before = next((c for c in creds.inventory(install) if c.id == cred_id), None)
    rb = Runbook("rotate", f"rotate {cred_id}", (Step("rotate", "credential.rotate", {"credential": cred_id}),),
                 "(moltir rotate)")
    req = runner.Request("rotate", rb, options, new_case=True, command=command)
    credential_rotate.INBOX[cred_id] = value
    try:
        result = runner.run(install, req, confirm=lambda lines: None, note=note, emit=emit)
    finally:
        credential_rotate.INBOX.pop(cred_id, None)
    if result.exit_code == 0 and result.status == "ok" and before is not None:
        _after_rotation(install, before, value, result.case_dir, note, revoke_old, wait, wait_timeout_s)
    return result


def _after_rotation(install: Install, before: Any, value: str, case_dir: str, note: Any, revoke_old: bool,
                    wait: bool, wait_timeout_s: float) -> None:
    """Record the rotation; where the issuer can tell (Telegram getMe), check the old value: refused proves
    the revocation (state "rotated and proved"), else it stays "pending a person"."""
    from moltir.commands import revoke_wait, rotations
    from moltir.openclaw import credential_table
    from moltir.redaction import fingerprint

    rotations.record(str(install.state_dir), before.id, before.provider, fingerprint(value), case_dir, install.env)
    config = install.read_config() if install.config_path.is_file() else {}
    t = rotation_table.target(install, config, before) if before.value else None
    if t is None or t.family != "telegram":
        if revoke_old:
            how = credential_table.revocation(before.provider)["how"]
            note(f"--revoke-old: moltir does not call {before.provider}'s revocation API yet; "
                 f"revoke the old one: {how}")
        return
    if revoke_old:
        for line in revoke_wait.TELEGRAM_STEPS:
            note(line)
    rev = revoke_wait.old_refused(revoke_wait.telegram_check(t.base, before.value, install.env, t.proxy),
                                  wait=revoke_old and wait, timeout_s=wait_timeout_s)
    if rev.refused:
        rotations.mark(str(install.state_dir), before.id, rotations.ROTATED, install.env)
    note(rev.detail if rev.refused else f"{rev.detail}: {before.id} stays 'pending a person' until it is refused")
