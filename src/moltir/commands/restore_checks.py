"""What ``moltir restore`` checks and says around the restore runbook.

The CLI calls, in this order:

* :func:`preflight` before taking the lock: refuses (exit 2) a case that is not the latest of
  this install, belongs to another install, or whose evidence fails verification, unless
  ``--force``; raises :class:`NothingToRestore` (exit 0, a no-op that says so) when the case
  recorded no change or is already restored. Returns notes worth showing.
* :func:`describe_restore` to show what will change before asking (it lives in
  :mod:`moltir.commands.restore_preview`).
* :func:`partial_failure_message` when a restore step failed: the exact state the install is
  left in and the next command to run.

Restore never brings the old token back: the gateway comes back on the NEW token.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir import paths
from moltir.commands.restore_preview import describe_restore as describe_restore  # re-exported
from moltir.engine.case import Case, latest_case_dir, same_dir
from moltir.errors import EXIT_ENV, EXIT_OK, EXIT_USAGE, MoltirError
from moltir.openclaw import Install, gateway_auth

RESTORE_RUNBOOK = "restore"


class NothingToRestore(MoltirError):
    """Restore has nothing to do for this case: exit 0 with a message that says so."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_OK)


# ---- reading the case ----------------------------------------------------------------------

def _journal_records(case: Case) -> list[dict[str, Any]]:
    from moltir.engine.journal import Journal

    return Journal(case.journal_path).records() if case.journal_path.exists() else []


def _status(case: Case) -> dict[str, Any]:
    from moltir.engine.cases import case_status

    return case_status(case)


def _case_flag(case: Case) -> str:
    return f" --case-dir {case.dir}"


# ---- preflight -----------------------------------------------------------------------------

def _verify_evidence(case: Case) -> tuple[bool | None, str]:
    """(True ok / False failed / None not checked, one line)."""
    if not (case.dir / "evidence").is_dir():
        return None, "the case holds no evidence folder; nothing to verify"
    try:
        evidence = importlib.import_module("moltir.evidence")
    except ImportError:
        return None, "evidence not verified (this moltir has no evidence verifier)"
    verify = getattr(evidence, "verify", None)
    if not callable(verify):
        return None, "evidence not verified (this moltir has no evidence verifier)"
    try:
        result = verify(case.dir)
    except MoltirError as exc:
        return False, exc.message
    ok = result if isinstance(result, bool) else getattr(result, "ok", None)
    if ok is None and isinstance(result, Mapping):
        ok = result.get("ok")
    state = getattr(result, "state", None)
    if state == "no evidence":
        return None, "no evidence snapshot in this case; nothing to verify"
    benign = ("evidence/INCOMPLETE", "seal.json is missing", "manifest.json is missing", "SHA256SUMS is missing")
    tampered = any(getattr(result, k, ()) for k in ("mismatched", "missing", "extra")) or any(
        not str(p).startswith(benign) for p in getattr(result, "problems", ()) or ())
    if ok is False and state == "incomplete" and not tampered:
        return None, "the evidence snapshot did not finish (evidence/INCOMPLETE); what it holds is not sealed"
    if ok is False and state == "unsealed" and not tampered:
        # evidence/ holds only other steps' output (audit.run's evidence/audit/): no snapshot was taken
        return None, "no sealed evidence snapshot in this case; nothing to verify"
    if ok is False:
        lines = getattr(result, "lines", None)
        problems = lines() if callable(lines) else getattr(result, "problems", None)
        if problems is None and isinstance(result, Mapping):
            problems = result.get("problems")
        first = ""
        if isinstance(problems, list | tuple) and problems:
            first = f": {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        return False, f"evidence verification failed{first}"
    if ok is True:
        return True, "evidence verified (hashes and seal match)"
    return None, "evidence verifier gave no verdict"


def preflight(case: Case, install: Install, *, force: bool) -> list[str]:
    """Refuse a restore that would act on the wrong or a doubtful case; return notes to show.

    Raises ``MoltirError`` (exit 2) unless ``force``: the case belongs to another install, is not
    the latest case of this install, or its evidence fails verification. Raises
    :class:`NothingToRestore` (exit 0) when the case recorded nothing to undo or is already
    restored.
    """
    notes: list[str] = []
    st = _status(case)
    if st["status"] == "restored":
        finished = st["runs"].get(RESTORE_RUNBOOK, {}).get("finished")
        raise NothingToRestore(f"case {case.id} is already restored" + (f" (at {finished})" if finished else "")
                               + "; nothing to do")
    if not case.restore_data():
        raise NothingToRestore(f"case {case.id} recorded no change to undo (containment changed nothing)",
                               "nothing to restore")

    from moltir.engine.cases import continued_by

    later = continued_by(case, install)
    if later is not None and _status(later)["status"] == "restored":
        raise NothingToRestore(f"case {case.id} was continued by case {later.id}, which is restored (that restore "
                               f"put back the pre-incident record this case holds); nothing to do")
    refusals: list[str] = []
    recorded_state = str(case.info.get("openclaw", {}).get("state_dir") or "")
    if recorded_state and not same_dir(Path(recorded_state), install.state_dir):
        refusals.append(f"case {case.id} was opened for {recorded_state}, not {install.state_dir}")
    latest = latest_case_dir(paths.installs_dir(install.env), install.key)
    if latest is not None and not same_dir(latest, case.dir):
        refusals.append(f"case {case.id} is continued by case {later.id}, which holds the same pre-incident "
                        f"record: run 'moltir restore' (it restores case {later.id})" if later is not None else
                        f"case {case.id} is not the latest case of this install (latest: {latest.name}); "
                        "restoring it would put back older values over a later containment")
    ok, line = _verify_evidence(case)
    if ok is False:
        refusals.append(f"the evidence of case {case.id} fails verification ({line}); "
                        "its restore record may have been tampered with")
    else:
        notes.append(line)
    if st["status"] in ("failed", "interrupted", "open"):
        notes.append(f"containment did not finish (status: {st['status']}); restore puts back what was recorded")

    if refusals and not force:
        raise MoltirError("; ".join(refusals),
                          hint="check 'moltir status'; pass --force to restore this case anyway",
                          exit_code=EXIT_USAGE)
    notes.extend(f"--force: {r}" for r in refusals)
    keyring_note = _keyring_ready_for_start(case, install)
    if keyring_note:
        notes.append(keyring_note)
    return notes


def _keyring_ready_for_start(case: Case, install: Install) -> str | None:
    """Refuse (exit 3, nothing changed) a restore whose gateway could not start: its token is in the
    keyring (moltir's exec SecretRef, openclaw 2026.9.x) and the secret helper cannot read it in the
    environment the gateway starts in (a locked or unreachable keyring). OpenClaw then refuses to start
    ("required secrets are unavailable"), after restore would already have put the DM policies back.

    Checked only when restore will start the gateway (it ran before containment and is not running
    now). Returns a note when the check ran and passed, else None. The environment cannot be forced:
    ``--force`` overrides the case checks only."""
    from moltir import keystore

    gateway = case.restore_data().get("gateway")
    if isinstance(gateway, Mapping) and gateway.get("was_running") is False:
        return None
    try:
        config = install.read_config()
    except MoltirError:
        return None  # restore-dms reports a broken config with its own message
    kind, ref = gateway_auth.token_setting(config)
    if kind != "ref" or not isinstance(ref, Mapping) or ref.get("source") != "exec" \
            or ref.get("provider") != keystore.PROVIDER_ALIAS:
        return None
    try:
        from moltir.openclaw import processes as proc

        if proc.find_gateways(install):
            return None
    except MoltirError:
        return None
    provider = config.get("secrets", {}).get("providers", {}).get(keystore.PROVIDER_ALIAS) \
        if isinstance(config.get("secrets"), Mapping) else None
    if not isinstance(provider, Mapping) or not isinstance(provider.get("command"), str):
        return None
    args = [str(a) for a in provider.get("args", []) if isinstance(a, str)]
    boot = keystore.boot_check(install, str(provider["command"]), args, entry=str(ref.get("id")))
    if not boot.ok:
        raise MoltirError(f"the gateway could not start: its token is in the keyring and the secret helper "
                          f"cannot read it ({boot.source}): {boot.detail}; nothing was changed",
                          hint="unlock the keyring (or start the D-Bus session the gateway uses), check with "
                               "'moltir doctor', then run 'moltir restore' again",
                          exit_code=EXIT_ENV)
    return f"keyring: the gateway's secret helper reads its token ({boot.detail})"


# ---- partial failure -----------------------------------------------------------------------

_STATE_DONE = {
    "dm_policy.restore": "DM policies are back to their pre-incident values",
    "pause.restore": "the paused settings (tools, elevated, cron) are back, on a restarted gateway if it runs",
    "gateway.start": "the gateway is running again",
    "token.verify": "the gateway accepts the new token and refuses the old one",
    "audit.run": "the final audit ran",
}
# (action, the status its step.done recorded) -> the state, where the status changes what is true
_STATE_DONE_AS = {
    ("gateway.start", "skipped"): ("the gateway stays stopped, as before containment (it was not running when "
                                   "the case contained it)"),
    ("gateway.start", "already"): "the gateway is running (it was already up)",
    ("token.verify", "skipped"): ("the token was not proven live: the gateway is not running (it reads the new "
                                  "token at its next start)"),
}
_STATE_FAILED = {
    "dm_policy.restore": ("DM policies are NOT restored: they are still disabled (or partly restored if "
                          "the step stopped mid-way; a path someone edited during the incident is left "
                          "alone and reported)"),
    "pause.restore": ("the paused settings (tools.deny, tools.elevated, cron) are NOT all back, or the running "
                      "gateway did not restart on them (see the error)"),
    "gateway.start": ("the gateway is NOT up on the new token: it did not start, did not come up, or does not "
                      "accept the new token (see the error)"),
    "token.verify": ("the gateway is running but the new token is NOT proven: it may serve another token; "
                     "do not expose it"),
    "audit.run": "the final audit failed or found problems (report in the case under evidence/audit/)",
}
_STATE_NOT_RUN = {
    "dm_policy.restore": "DM policies are still disabled",
    "pause.restore": "the paused settings are still paused",
    "gateway.start": "the gateway is still stopped",
    "token.verify": "the token was not checked",
    "audit.run": "no final audit yet",
}


def _done_state(action: str, record: Mapping[str, Any]) -> str | None:
    """What a done step left true, from its journal record (status, details)."""
    status = str(record.get("status") or "done")
    if (action, status) in _STATE_DONE_AS:
        return _STATE_DONE_AS[(action, status)]
    details = record.get("details")
    if action == "token.verify" and isinstance(details, Mapping) and details.get("ok") \
            and details.get("old_status") is None:
        return "the gateway accepts the new token (the old token could not be tested)"
    return _STATE_DONE.get(action)


def _failed_state(action: str, gateway_up: bool | None) -> str | None:
    if action == "token.verify" and gateway_up is False:
        return "the token was NOT proven: the gateway is not running"
    return _STATE_FAILED.get(action)


# step id -> action in the shipped runbooks/restore.json5 (used when the runbook file is gone)
_SHIPPED_ACTIONS = {"restore-dms": "dm_policy.restore", "restore-pause": "pause.restore",
                    "start-gateway": "gateway.start",
                    "verify-token": "token.verify", "final-audit": "audit.run"}


def _runbook_actions(source: object) -> dict[str, str]:
    """step id -> action, read (not validated) from the runbook file a run used."""
    if not isinstance(source, str) or not source:
        return {}
    try:
        import json5

        data = json5.loads(Path(source).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return {}
    steps = data.get("steps") if isinstance(data, dict) else None
    return {str(s["id"]): str(s["action"]) for s in steps or []
            if isinstance(s, dict) and isinstance(s.get("id"), str) and isinstance(s.get("action"), str)}


def _restore_steps(case: Case) -> tuple[list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """(step id, action) of the last restore run, in runbook order, and each step's last
    verified ``step.done`` record (its status: a ``gateway.start`` that left the gateway stopped
    is "skipped", one that found it running "already")."""
    actions: dict[str, str] = dict(_SHIPPED_ACTIONS)
    planned: list[str] = []
    done: dict[str, dict[str, Any]] = {}
    for rec in _journal_records(case):
        if rec.get("runbook") != RESTORE_RUNBOOK:
            continue
        if rec.get("event") == "run.start":
            planned = [s for s in rec.get("steps") or [] if isinstance(s, str)]
            actions.update(_runbook_actions(rec.get("source")))
        elif rec.get("event") in ("step.start", "step.failed") and isinstance(rec.get("step"), str) \
                and rec.get("action"):
            actions[rec["step"]] = str(rec["action"])
        if rec.get("event") == "step.done" and rec.get("verified") and isinstance(rec.get("step"), str):
            done[rec["step"]] = rec
    return [(sid, actions.get(sid, "")) for sid in planned], done


def partial_failure_message(case: Case, failed_step: str) -> str:
    """The state the install is left in after ``failed_step`` failed, and the next command.

    Decision: every clause is true of this run, not of the usual one: a ``gateway.start`` that
    left the gateway stopped (it was not running when the case contained it) says so instead of
    "the gateway is running again", and a token proof that could not run on a stopped gateway
    says that.
    """
    st = _status(case)
    run = st["runs"].get(RESTORE_RUNBOOK, {})
    done = set(run.get("done", {}))
    error = run.get("failed", {}).get(failed_step)
    planned, records = _restore_steps(case)
    steps = planned or [(failed_step, "")]
    state: list[str] = []
    gateway_up: bool | None = None  # what gateway.start left: True running, False stopped, None unknown
    for sid, action in steps:
        if sid == failed_step:
            state.append(_failed_state(action, gateway_up) or f"step {sid} ({action or '?'}) failed")
            if action == "gateway.start":
                gateway_up = False
            break
        if sid in done:
            state.append(_done_state(action, records.get(sid, {})) or f"step {sid} done")
            if action == "gateway.start":
                gateway_up = str(records.get(sid, {}).get("status") or "done") != "skipped"
    passed = False
    for sid, action in steps:
        if passed:
            state.append(_STATE_NOT_RUN.get(action, f"step {sid} not run"))
        passed = passed or sid == failed_step
    action = dict(steps).get(failed_step, "")
    cmd = f"moltir restore --yes{_case_flag(case)}"
    extra = ""
    if action == "dm_policy.restore":
        extra = (f"; if it refused because the config was edited during the incident, review the change and "
                 f"run '{cmd} --force'")
    elif action == "gateway.start":
        extra = "; see the gateway log in the state dir's logs/ folder for why it did not start"
    why = f" ({error})" if error else ""
    return (f"restore stopped at step '{failed_step}'{why}. Install state: " + "; ".join(state)
            + f". The new token stays in place. Next: fix the cause, then run '{cmd}' "
            f"(it resumes at '{failed_step}'){extra}.")
