"""``moltir rotate plan``: each credential of the inventory with how moltir would rotate it.

Changes nothing. Fingerprints are under a key of this run only (like ``moltir credentials``). For each
credential: the inventory record, then ``rotation``: ``by`` (``moltir rotate``, ``contain`` for the
gateway token, or ``hand``), where the new value is validated, where it is stored, how the running
gateway re-reads it, and who can revoke the old one (:mod:`moltir.openclaw.rotation_table`).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from moltir.openclaw import credential_table, rotation_table
from moltir.openclaw import credentials as creds

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
        revoke = rotation_table.revocation(t) if t is not None else rec.get("revocation") or {}
        if t is not None:
            rotation: dict[str, Any] = {"by": "moltir rotate", "command": f"moltir rotate {cred.id}",
                                        **t.describe()}
        elif cred.kind == "gateway_token":
            rotation = {"by": "contain", "command": "moltir contain", "how": rotation_table.by_hand(cred)}
        else:
            rotation = {"by": "hand", "command": None, "how": rotation_table.by_hand(cred)}
        rotation["revoke_old"] = {**revoke, **_revoker(t)}
        out.append({**rec, "rotation": rotation})
    return {"install": str(install.state_dir), "config": str(install.config_path),
            "release": install.version, "notes": notes,
            "fingerprint_key": "per-run (random, not kept: fingerprints compare within this output only)",
            "credentials": out}


def _revoker(t: rotation_table.Target | None) -> dict[str, Any]:
    """Does ``moltir rotate --revoke-old`` call the issuer's API itself (``by_moltir``), and what it needs
    besides the old value (``needs``: a management or admin key, else None)?"""
    from moltir.commands import revoke_wait

    if t is None:
        return {"by_moltir": False, "needs": None}
    return {"by_moltir": revoke_wait.has_api(t), "needs": revoke_wait.management_key_needed(t)}


def _revoke_line(revoke: dict[str, Any]) -> str:
    from moltir.text import shown

    how = shown(revoke.get("how"), 300)
    if not revoke.get("by_moltir"):
        return f"    revoke the old one: {how}"
    needs = f" (it asks for {shown(revoke['needs'], 200)})" if revoke.get("needs") else ""
    return f"    revoke the old one: --revoke-old calls the issuer's API{needs}; by hand: {how}"


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
        lines.append(_revoke_line(rot["revoke_old"]))
    return "\n".join(lines)


def management_key_needed(install: Install, cred_id: str) -> str | None:
    """What ``--revoke-old`` needs besides the old value for ``cred_id`` (an OpenRouter management key),
    or None: the CLI asks for it (stdin's second line, or a hidden prompt) before anything changes."""
    from moltir.commands import revoke_wait

    cred = next((c for c in creds.inventory(install) if c.id == cred_id), None)
    config = install.read_config() if install.config_path.is_file() else {}
    t = rotation_table.target(install, config, cred) if cred is not None and cred.value else None
    return revoke_wait.management_key_needed(t) if t is not None else None


def _check_management_key(install: Install, cred_id: str, management: str) -> None:
    """The management key must be accepted before anything changes (refused: exit 2; unreachable: exit 3)."""
    from moltir.commands import revoke_wait
    from moltir.errors import EXIT_ENV, MoltirError, usage_error
    from moltir.openclaw import provider_check

    cred = next(c for c in creds.inventory(install) if c.id == cred_id)
    t = rotation_table.target(install, install.read_config(), cred)
    if t is None:
        return
    check = revoke_wait.check_management_key(t, management, install.env)
    if check.verdict == provider_check.REFUSED:
        raise usage_error(f"the issuer refused the management key ({check.detail}); nothing changed",
                          "give a management key of the account that owns the old key")
    if check.verdict != provider_check.GOOD:
        raise MoltirError(f"could not check the management key ({check.detail}); nothing changed",
                          hint="check the network path to the issuer and run again", exit_code=EXIT_ENV)


def run_rotation(install: Install, cred_id: str, value: str, options: Any, *, command: str,
                 note: Any, emit: Any, revoke_old: bool = False, wait: bool = True,
                 wait_timeout_s: float = 600.0, management_key: str | None = None) -> Any:
    """``moltir rotate CREDENTIAL-ID``: one ``credential.rotate`` step in its own case (kind ``rotate``:
    never the incident case ``status`` and ``restore`` act on). ``value`` reaches the action in memory
    only (:data:`moltir.actions.credential_rotate.INBOX`), and is gone from it when this returns. Then
    (:mod:`moltir.commands.revoke_wait`) the old value is revoked through the issuer's API where moltir
    can (``--revoke-old``; ``management_key`` for OpenRouter, checked first) and checked at the issuer
    where it can tell."""
    from moltir.actions import credential_rotate
    from moltir.commands import run as runner
    from moltir.engine.runbook import Runbook, Step
    from moltir.redaction import register

    register(value)
    register(management_key)
    before = next((c for c in creds.inventory(install) if c.id == cred_id), None)
    if management_key is not None and revoke_old and before is not None:
        _check_management_key(install, cred_id, management_key)
    rb = Runbook("rotate", f"rotate {cred_id}", (Step("rotate", "credential.rotate", {"credential": cred_id}),),
                 "(moltir rotate)")
    req = runner.Request("rotate", rb, options, new_case=True, command=command)
    credential_rotate.INBOX[cred_id] = value
    try:
        result = runner.run(install, req, confirm=lambda lines: None, note=note, emit=emit)
    finally:
        credential_rotate.INBOX.pop(cred_id, None)
    if result.exit_code == 0 and result.status == "ok" and before is not None:
        _after_rotation(install, before, value, result.case_dir, note,
                        {"revoke_old": revoke_old, "wait": wait, "timeout_s": wait_timeout_s,
                         "management_key": management_key})
    return result


def _after_rotation(install: Install, before: Any, value: str, case_dir: str, note: Any,
                    how: dict[str, Any]) -> None:
    """Record the rotation; with ``--revoke-old`` revoke the old value through the issuer's API where
    moltir can, else print the steps a person follows; where the issuer can tell, check the old value:
    refused proves the revocation (state "rotated and proved"), else it stays as recorded."""
    from moltir.commands import revoke_wait, rotations
    from moltir.redaction import fingerprint

    config = install.read_config() if install.config_path.is_file() else {}
    t = rotation_table.target(install, config, before) if before.value else None
    revoke = rotation_table.revocation(t) if t is not None else None
    rotations.record(str(install.state_dir), before.id, before.provider, fingerprint(value), case_dir, install.env,
                     revoke=revoke)
    revoke_old = bool(how["revoke_old"])
    api = revoke_old and t is not None and revoke_wait.has_api(t)
    someone = True  # someone is revoking the old value: worth waiting for
    if api and t is not None:
        outcome = revoke_wait.revoke_by_api(t, before.value, install.env, how.get("management_key"), value)
        note(outcome.detail)
        someone = outcome.done or outcome.by_hand
    check = revoke_wait.old_check(t, before.value, install.env) if t is not None else None
    if t is not None and t.family == "model" and not api:
        check = None  # a key moltir did not revoke: its models list says nothing a person asked for
    if revoke_old and not api:
        for line in _person_steps(t, before.provider):
            note(line)
    if t is None or check is None:
        return
    waits = revoke_old and bool(how["wait"]) and someone and (api or t.family in revoke_wait.STEPS)
    rev = revoke_wait.old_refused(check, wait=waits, timeout_s=float(how["timeout_s"]))
    if rev.refused:
        rotations.mark(str(install.state_dir), before.id, rotations.ROTATED, install.env)
    if rev.refused:
        note(rev.detail)
    elif rotations.state_of(rotations.load(str(install.state_dir), install.env), before.id) == rotations.PENDING:
        note(f"{rev.detail}: {before.id} stays 'pending a person' until it is refused")
    else:
        note(f"{rev.detail}: revoke it (--revoke-old, or {rotation_table.revocation(t)['how']})")


def _person_steps(t: rotation_table.Target | None, provider: str) -> tuple[str, ...]:
    """What a person does to revoke the old value (moltir calls no API for it)."""
    from moltir.commands import revoke_wait

    steps = revoke_wait.STEPS.get(t.family, ()) if t is not None else ()
    how = (rotation_table.revocation(t) if t is not None else credential_table.revocation(provider))["how"]
    return steps or (f"--revoke-old: moltir does not call {provider}'s revocation API yet; revoke the old one: {how}",)
