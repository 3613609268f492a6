"""``--all-profiles``: contain / restore / status of every OpenClaw install moltir finds at once.

A family or team sharing one host runs several profiles (``--profile main``, ``--profile
rescue``), each with its own state dir, port, unit and token; root also sees every system
unit's install. In an incident they are all contained together:

* every install found (:func:`moltir.openclaw.deployments.all_installs`) gets its own case, and
  all the cases of one run share one incident id (``case.json`` ``incident``);
* each install's preflight runs first; one that is refused (no keyring, a system unit without
  root) is reported and the others still run -- containment never waits on the weakest install;
* the runs go in parallel, one thread per install (each under its own install lock), so the total
  is bounded by the slowest gateway drain, not their sum;
* the exit code is the first non-zero one of the installs (0 when all succeeded); ``--json`` prints
  one object with the incident id and each install's result.

Decision: ``restore --all-profiles`` restores each install's latest case; an install with nothing to
restore is reported as such (not an error). An install whose restore would put back a setting the audit
flags without its ``--accept-risk`` is refused like any other preflight (``moltir.commands.restore_risk``).

``--notify URL``: every install's run sends its own messages (started, step failed, the outcome), each
naming the install's profile (``default`` for the unnamed one) and install key; a URL that carries a
credential of any of the installs is refused (exit 2) before anything runs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import click

from moltir.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MoltirError


@dataclass
class Outcome:
    install: Any
    label: str
    result: Any = None  # engine.RunResult
    error: MoltirError | None = None
    notes: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # restore --accept-risk ids this install needed

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        return int(self.result.exit_code) if self.result is not None else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"install": self.label, "state_dir": str(self.install.state_dir),
                               "profile": self.install.profile, "exit_code": self.exit_code,
                               "notes": self.notes}
        if self.error is not None:
            out["error"] = {"message": self.error.message, "hint": self.error.hint, "code": self.error.exit_code}
        if self.result is not None:
            out["result"] = self.result.to_json()
        return out


def run_all(kind: str, default_runbook: str, kw: Mapping[str, Any], installs: list[Any]) -> None:
    """Run ``kind`` (contain | restore) on every install in parallel; print and exit."""
    from moltir import engine, log
    from moltir.actions.base import RunOptions
    from moltir.commands import notifying
    from moltir.commands import run as runner
    from moltir.engine import runbook
    from moltir.engine.case import new_case_id
    from moltir.openclaw.deployments import label

    if kw.get("case_dir"):
        raise MoltirError("--case-dir names one case folder; it cannot be used with --all-profiles",
                          hint="drop one of them", exit_code=EXIT_USAGE)
    if not installs:
        raise MoltirError("no OpenClaw install found for this user (no ~/.openclaw, no ~/.openclaw-<profile>, "
                          "no running gateway)", hint="'moltir doctor' shows where moltir looked", exit_code=3)
    log.configure(verbose=bool(kw.get("verbose")), quiet=bool(kw.get("as_json")))
    rb = runbook.load(runbook.resolve(kw.get("runbook_path") or default_runbook))
    options = RunOptions(dry_run=False, force=bool(kw.get("force")),
                         allow_insecure_keyring=bool(kw.get("allow_insecure_keyring")),
                         clean_env=bool(kw.get("clean_env")), revoke_devices=bool(kw.get("revoke_devices")),
                         reason=str(kw.get("reason") or ""), reopen_open=str(kw.get("reopen_open") or "open"))
    accept = tuple(kw.get("accept_risk") or ())
    incident = new_case_id()
    outcomes = [Outcome(i, label(i)) for i in installs]
    targets = {id(o): notifying.check_targets(o.install, kw.get("notify") or ()) for o in outcomes}
    ready: list[Outcome] = []
    for out in outcomes:  # every refusal known before anything changes anywhere
        try:
            if kind == "restore":
                case = engine.existing_case(out.install, case_dir=None, new_case=False, kind="restore")
                if case is not None:
                    _, out.accepted = runner.refuse_unaccepted_risk(
                        out.install, runner.Request("restore", rb, options, accept_risk=accept),
                        case, out.notes.append)
            engine.preflight(rb, out.install, options,
                             engine.existing_case(out.install, case_dir=None, new_case=False, kind=kind))
            ready.append(out)
        except MoltirError as exc:
            out.error = exc
    _confirm(kind, outcomes, ready, bool(kw.get("yes")))
    command = " ".join(["moltir", *sys.argv[1:]])
    threads = [threading.Thread(target=_run_one, args=(kind, rb, o, options, incident, command, targets[id(o)]),
                                daemon=True, name=f"run-{o.label}") for o in ready]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        click.echo("moltir: interrupted (runs in progress record it and resume next time)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _render(kind, incident, outcomes, bool(kw.get("as_json")))
    code = next((o.exit_code for o in outcomes if o.exit_code), EXIT_OK)
    if code:
        sys.exit(code)


def _confirm(kind: str, outcomes: list[Outcome], ready: list[Outcome], yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise MoltirError("refusing to run without confirmation: stdin is not a terminal",
                          hint=f"add --yes to run 'moltir {kind} --all-profiles' unattended", exit_code=EXIT_USAGE)
    click.echo(f"moltir {kind} will act on {len(ready)} install(s):", err=True)
    for o in outcomes:
        state = "" if o in ready else f"  (refused: {o.error.one_line() if o.error else '?'})"
        click.echo(f"  {o.label:<18} {o.install.state_dir}{state}", err=True)
    if not click.confirm("Proceed?", default=False, err=True):
        raise MoltirError("cancelled; nothing was changed", exit_code=EXIT_USAGE)


def _run_one(kind: str, rb: Any, out: Outcome, options: Any, incident: str, command: str,
             targets: list[Any]) -> None:
    from moltir import engine, log
    from moltir.commands import notifying
    from moltir.text import shown

    def emit(event: str, fields: Mapping[str, Any]) -> None:
        log.emit(event, {**fields, "install_label": out.label})

    def note(text: str) -> None:
        click.echo(f"warning: {shown(out.label, 80)}: {shown(text, 2000)}", err=True)

    notifier = notifying.Notifier(targets, kind, out.install.key, note,
                                  profile=str(out.install.profile or "default")[:64])
    try:
        with engine.install_lock(out.install, command):
            case, resumed = engine.open_case(rb, out.install, case_dir=None, new_case=False,
                                             reason=options.reason, kind=kind, notes=out.notes, incident=incident)
            if out.accepted:
                case.journal().append("risk.accepted", check_ids=out.accepted)
            out.result = engine.execute(rb, out.install, case, options, resumed=resumed, emit=notifier.wrap(emit),
                                        command=command, role=kind)
            notifier.finish(out.result, case)
    except MoltirError as exc:
        out.error = exc
    except Exception as exc:  # a bug in one install's run must not hide the others' results
        out.error = MoltirError(f"internal error ({type(exc).__name__})", hint="please report it")


def _render(kind: str, incident: str, outcomes: list[Outcome], as_json: bool) -> None:
    if as_json:
        from moltir.result import echo_json, error

        code = next((o.exit_code for o in outcomes if o.exit_code), EXIT_OK)
        errors = [error(f"{o.label}: {o.error.message if o.error else o.result.message}",
                        o.error.hint if o.error else "", o.exit_code) for o in outcomes if o.exit_code]
        echo_json({"all_profiles": True, "incident": incident, "installs": [o.to_json() for o in outcomes]},
                  exit_code=code, errors=errors)
        return
    click.echo("")
    click.echo(f"incident {incident}: {kind} of {len(outcomes)} install(s)")
    for o in outcomes:
        if o.error is not None:
            text = o.error.one_line() if o.error.exit_code else o.error.message
            mark = "✓" if o.error.exit_code == 0 else "✗"
        else:
            text = o.result.message
            mark = "✓" if o.result.exit_code == 0 else "✗"
        click.echo(f"{mark} {o.label}: {text}")
        if o.result is not None and o.result.case_dir:
            click.echo(f"    case folder: {o.result.case_dir}")


def status_all(installs: list[Any], as_json: bool) -> int:
    """``status --all-profiles``: each install's latest case, one block each; exit 5 if any is damaged."""
    from moltir.commands import status as status_mod
    from moltir.openclaw.deployments import label

    reports = []
    for inst in installs:
        try:
            reports.append((inst, status_mod.build(inst, None, verify=False)))
        except MoltirError as exc:
            reports.append((inst, {"status": "error", "error": exc.one_line()}))
    code = 5 if any(r.get("status") == "damaged" for _, r in reports) else 0
    if as_json:
        from moltir.result import echo_json

        echo_json({"all_profiles": True, "installs": [{"install": label(i), "state_dir": str(i.state_dir),
                                                       "report": r} for i, r in reports]}, exit_code=code)
    else:
        for inst, report in reports:
            click.echo(f"== {label(inst)} ({inst.state_dir})")
            click.echo(report["error"] if report.get("status") == "error" else status_mod.render(report))
    return code
