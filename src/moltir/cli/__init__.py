"""The click layer: parse, confirm, render. No logic lives here.

Imports stay light at module level (click only) so ``moltir --help`` starts fast; the engine,
psutil, keyring and json5 load when a command runs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from moltir import __version__
from moltir.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_STEP_FAILED, EXIT_USAGE, MoltirError

F = TypeVar("F", bound=Callable[..., Any])

INSTALL_OPTIONS = ("profile", "dev", "state_dir", "config", "openclaw_bin", "user")


def install_options(fn: F) -> F:
    """The same install-selection options on the group and on every command."""
    fn = click.option("--user", "user", metavar="NAME",
                      help="Act on this user's install (as root: e.g. the user of an OpenClaw system unit).")(fn)
    fn = click.option("--openclaw-bin", metavar="PATH", help="The openclaw (or clawdbot) binary.")(fn)
    fn = click.option("--config", metavar="PATH", help="OpenClaw config file (default: from the state dir).")(fn)
    fn = click.option("--state-dir", metavar="DIR", help="OpenClaw state dir (default ~/.openclaw).")(fn)
    fn = click.option("--dev", is_flag=True, default=None, help="Act on the 'dev' profile.")(fn)
    fn = click.option("--profile", metavar="NAME", help="OpenClaw profile (like 'openclaw --profile').")(fn)
    return fn


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON object.")(fn)


def _install_args(ctx: click.Context, given: dict[str, Any]) -> dict[str, Any]:
    base = dict((ctx.find_root().obj or {}).get("install", {}))
    for key in INSTALL_OPTIONS:
        if given.get(key) not in (None, False):
            base[key] = given[key]
    return base


def get_install(ctx: click.Context, given: dict[str, Any]) -> Any:
    from moltir.openclaw import discover
    from moltir.openclaw.deployments import select_env

    args = _install_args(ctx, given)
    explicit = any(args.get(k) for k in ("profile", "dev", "state_dir", "config"))
    env, openclaw_bin, note = select_env(args.get("user"), explicit=explicit, base=os.environ,
                                         openclaw_bin=args.get("openclaw_bin"))
    if note:
        click.echo(f"moltir: {note}", err=True)
    return discover(profile=args.get("profile"), dev=bool(args.get("dev")), state_dir=args.get("state_dir"),
                    config=args.get("config"), openclaw_bin=openclaw_bin, env=env)


def _fail(exc: MoltirError, as_json: bool) -> None:
    from moltir.result import echo_json, error

    if exc.exit_code == 0:  # "nothing to do" outcomes: say so, succeed
        if as_json:
            echo_json({"status": "noop", "message": exc.one_line()})
        else:
            click.echo(exc.one_line())
        sys.exit(0)
    if as_json:
        echo_json(exit_code=exc.exit_code, errors=[error(exc.message, exc.hint, exc.exit_code)])
    from moltir.text import shown

    click.echo(f"moltir: {shown(exc.one_line(), 4000)}", err=True)
    sys.exit(exc.exit_code)


def handle_errors(fn: F) -> F:
    """Catch MoltirError at the edge; anything else prints one line and where the traceback went."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "as_json" in kwargs and _root_json():  # `moltir --json CMD` means `moltir CMD --json`
            kwargs["as_json"] = True
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except MoltirError as exc:
            _fail(exc, as_json)
        except KeyboardInterrupt:
            if as_json:
                from moltir.result import echo_json, error

                echo_json(exit_code=EXIT_INTERRUPTED, errors=[error("interrupted", "", EXIT_INTERRUPTED)])
            click.echo("moltir: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # stdout closed early (e.g. `moltir ... | head`): stop quietly, as the Python docs advise
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_STEP_FAILED)
        except click.exceptions.Exit:
            raise
        except (click.ClickException, click.Abort):
            raise
        except Exception as exc:
            where = _write_crash_log(exc)
            line = f"internal error ({type(exc).__name__}); the traceback is in {where}. Please report it."
            if as_json:
                from moltir.result import echo_json, error

                echo_json(exit_code=EXIT_STEP_FAILED, errors=[error(line, "", EXIT_STEP_FAILED)])
            click.echo(f"moltir: {line}", err=True)
            sys.exit(EXIT_STEP_FAILED)
        return None

    return wrapper  # type: ignore[return-value]


def _root_json() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.find_root().obj or {}).get("json"))


def _write_crash_log(exc: BaseException) -> str:
    import datetime as dt
    import traceback

    from moltir.paths import moltir_home
    from moltir.redaction import redact

    text = redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    path: Path | None = None
    try:
        folder = moltir_home() / "crash"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"crash-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return str(path)
    except OSError:
        if path is not None:  # e.g. disk full: no empty crash log left behind
            with contextlib.suppress(OSError):
                path.unlink()
        return "(could not write a crash log)"


class LazyGroup(click.Group):
    """Subcommands that live in their own modules, imported only when used.

    ``lazy`` maps a name to ``("module:attr", "short help")``: ``--help`` lists them from the
    short help without importing anything (that keeps ``moltir --help`` fast).
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name][0].partition(":")
            try:
                cmd: click.Command = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                return None
            return cmd
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
                continue
            cmd = super().get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=formatter.width - 20)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())


@click.group(cls=LazyGroup, lazy={
    "evidence": ("moltir.cli.evidence:evidence", "List, verify, export evidence; custody notes."),
    "token": ("moltir.cli.token:token", "Where the gateway reads its token: repin or unpin."),
}, epilog=EXIT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="moltir")
@click.option("--json", "as_json", is_flag=True, help="Print one machine-readable JSON object (any command).")
@install_options
@click.pass_context
def cli(ctx: click.Context, /, as_json: bool, **install: Any) -> None:
    """moltir: incident response for a self-hosted OpenClaw gateway.

    \b
    moltir contain   stop the gateway, disable every DM path, rotate the gateway token
                     into the OS keyring, snapshot the evidence, run the deep audit
    moltir restore   undo containment from the case record, on the NEW token
    moltir drill     rotation drill: rotate, prove new token accepted and old refused
    moltir status    what the current case says
    """
    ctx.obj = {"install": {k: v for k, v in install.items() if v not in (None, False)}, "json": as_json}


# ---- runbook runners ----------------------------------------------------------------------

def _check_free_text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from moltir.text import MAX_REASON

    if value and len(value) > MAX_REASON:
        raise click.BadParameter(f"{len(value)} characters: at most {MAX_REASON}; put a longer account in a "
                                 "file and name it here")
    return value


def run_options(fn: F) -> F:
    opts = [
        click.option("--runbook", "runbook_path", metavar="NAME|PATH", help="Run another runbook."),
        click.option("--dry-run", is_flag=True, help="Show the plan and the config diff; change nothing."),
        click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required without a TTY)."),
        click.option("--case-dir", type=click.Path(path_type=Path), help="Folder of the case (default: "
                     "$XDG_STATE_HOME/moltir/cases/<case-id>)."),
        click.option("--reason", default="", callback=_check_free_text,
                     help="Why: recorded in the case (at most 2000 characters)."),
        click.option("--force", is_flag=True, help="Override safety refusals (conflicts, non-latest case)."),
        click.option("--allow-insecure-keyring", is_flag=True, help="Accept a plaintext/null keyring backend."),
        click.option("--clean-env", is_flag=True, help="Remove a stale OPENCLAW_GATEWAY_TOKEN from <state>/.env."),
        click.option("--revoke-devices", is_flag=True, help="Revoke paired device tokens too."),
        click.option("-v", "--verbose", is_flag=True, help="More detail on stderr."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return json_option(install_options(fn))


def _run_runbook(ctx: click.Context, kind: str, default_runbook: str, kw: dict[str, Any],
                 new_case: bool = False) -> None:
    """contain / restore / drill: parse, confirm, render; the run itself is moltir.commands.run's."""
    from moltir import engine, log
    from moltir.actions.base import RunOptions
    from moltir.commands import run as runner
    from moltir.engine import runbook
    from moltir.text import shown

    log.configure(verbose=kw["verbose"], quiet=kw["as_json"])
    install = get_install(ctx, kw)
    rb = runbook.load(runbook.resolve(kw["runbook_path"] or default_runbook))
    engine.require_install(install)
    options = RunOptions(dry_run=kw["dry_run"], force=kw["force"],
                         allow_insecure_keyring=kw["allow_insecure_keyring"], clean_env=kw["clean_env"],
                         revoke_devices=kw["revoke_devices"], reason=kw["reason"],
                         reopen_open=kw.get("reopen_open") or "open")

    def note(text: str) -> None:
        click.echo(f"warning: {shown(text, 2000)}", err=True)

    for line in install.notes:
        note(line)
    req = runner.Request(kind, rb, options, case_dir=kw["case_dir"], new_case=new_case,
                         command=" ".join(["moltir", *sys.argv[1:]]))
    if kw["dry_run"]:
        result = runner.plan(install, req, note)
        _render(result, kw["as_json"])
        if result.exit_code:
            click.echo(f"moltir: {shown(result.message, 4000)}", err=True)
            sys.exit(result.exit_code)
        return

    def confirm(lines: Sequence[str]) -> None:
        if kw["yes"]:
            if not kw["as_json"]:
                for line in lines[1 + len(rb.steps):]:  # the restore notes (warnings about reopening)
                    click.echo(shown(line.strip(), 2000), err=True)
            return
        if not sys.stdin.isatty():
            raise MoltirError("refusing to run without confirmation: stdin is not a terminal",
                              hint=f"add --yes to run 'moltir {kind}' unattended, or --dry-run to see the plan",
                              exit_code=EXIT_USAGE)
        for line in lines:
            click.echo(shown(line, 2000), err=True)
        try:
            proceed = click.confirm("Proceed?", default=False, err=True)
        except click.Abort:  # Ctrl-C or end of input at the prompt
            raise MoltirError("interrupted at the confirmation; nothing was changed",
                              exit_code=EXIT_INTERRUPTED) from None
        if not proceed:
            raise MoltirError("cancelled; nothing was changed", exit_code=EXIT_USAGE)

    result = runner.run(install, req, confirm=confirm, note=note, emit=log.emit)
    _render(result, kw["as_json"])
    if result.exit_code:
        sys.exit(result.exit_code)


def run_errors(result: Any) -> list[dict[str, Any]]:
    """The envelope's errors of a runbook run: one per failed step (its one-line error), or the run's
    message when it ended non-zero another way (interrupted)."""
    from moltir.result import error

    failed = [s for s in result.steps if s.status == "failed"]
    hint = (f"run 'moltir {result.runbook}' again: it resumes at the first step not done"
            if result.runbook != "drill" else "fix the cause and run 'moltir drill' again")
    out = [error(f"step '{s.id}' ({s.action}): {s.error}", hint, s.exit_code or result.exit_code) for s in failed]
    if not out and result.exit_code:
        out = [error(result.message, "", result.exit_code)]
    return out


def _render(result: Any, as_json: bool) -> None:
    if as_json:
        from moltir.result import echo_json

        echo_json(result.to_json(), exit_code=result.exit_code, errors=run_errors(result))
        return
    from moltir.text import shown

    lines: list[str] = []
    _render_text(result, lines.append)
    for line in lines:  # config values, step ids, reasons: control characters shown escaped, never sent raw
        click.echo("\n".join(shown(part, 4000) for part in str(line).split("\n")))


def _render_text(result: Any, out: Callable[[str], None]) -> None:
    if result.status == "dry-run":
        out(f"Plan for '{result.runbook}' (dry run: nothing will be changed)")
        for i, p in enumerate(result.plans, 1):
            head = f"{i}. {p.step.id} ({p.step.action})"
            if p.error:
                out(f"{head}: cannot plan: {p.error}")
                continue
            assert p.plan is not None
            tag = " [already done]" if p.plan.already_done else ("" if p.plan.simulated else " [not simulated]")
            out(f"{head}: {p.plan.summary}{tag}")
            for c in p.plan.changes:
                arrow = (f": {c.before} -> {c.after}" if c.before is not None and c.after is not None else
                         f": {c.after if c.after is not None else c.before}" if (c.before or c.after) else "")
                out(f"     {c.kind:<8} {c.target}{arrow}{('  ' + c.detail) if c.detail else ''}")
            for w in p.plan.warnings:
                out(f"     warning: {w}")
            if p.plan.diff:
                out("\n".join("     " + ln for ln in p.plan.diff.rstrip("\n").splitlines()))
        out(result.message)
        return
    if result.status == "noop":
        out(result.message)
        return
    out("")
    out(result.message)
    if result.case_dir:
        out(f"case folder: {result.case_dir}")


def _all_profiles(ctx: click.Context, kind: str, kw: dict[str, Any]) -> None:
    """``--all-profiles``: every install moltir finds, in parallel (moltir.commands.profiles)."""
    from moltir.commands import profiles
    from moltir.openclaw.deployments import all_installs

    args = _install_args(ctx, kw)
    if any(args.get(k) for k in ("profile", "dev", "state_dir", "config", "user")):
        raise MoltirError("--all-profiles acts on every install: it cannot be combined with --profile, --dev, "
                          "--state-dir, --config or --user", hint="drop one of them", exit_code=EXIT_USAGE)
    installs = all_installs(os.environ, openclaw_bin=args.get("openclaw_bin"))
    if kw.get("dry_run"):
        code = 0
        for inst in installs:
            click.echo(f"== {inst.state_dir}")
            args_one = [sys.argv[0], kind, "--dry-run", "--state-dir", str(inst.state_dir),
                        "--config", str(inst.config_path)]
            try:
                cli.main(args=args_one[1:], standalone_mode=False, obj=None)
            except SystemExit as exc:
                code = code or int(exc.code or 0)
        sys.exit(code)
    profiles.run_all(kind, kind, kw, installs)


@cli.command(epilog=EXIT_HELP)
@click.option("--new-case", is_flag=True, help="Open a new case instead of resuming the last unfinished one.")
@click.option("--all-profiles", is_flag=True, help="Contain every install found (each profile; as root, "
              "every system unit's too), in parallel: one case each, one incident id.")
@run_options
@click.pass_context
@handle_errors
def contain(ctx: click.Context, /, new_case: bool, all_profiles: bool, **kw: Any) -> None:
    """Contain an incident: gateway down, DMs off, new token, evidence, audit.

    Resumes the install's last unfinished case (after a crash or a failed step) at the
    first step not verified done; --new-case starts fresh.
    """
    if all_profiles:
        if new_case:
            raise MoltirError("--new-case cannot be combined with --all-profiles", exit_code=EXIT_USAGE)
        _all_profiles(ctx, "contain", kw)
        return
    _run_runbook(ctx, "contain", "contain", kw, new_case=new_case)


@cli.command(epilog=EXIT_HELP)
@click.option("--all-profiles", is_flag=True, help="Restore every install found that has a case to restore.")
@click.option("--reopen-open", type=click.Choice(["open", "pairing", "allowlist", "disabled"]), default="open",
              show_default=True, help="What a DM policy that was 'open' (anyone may write) goes back to.")
@run_options
@click.pass_context
@handle_errors
def restore(ctx: click.Context, /, all_profiles: bool, **kw: Any) -> None:
    """Undo containment from the case record: DM policies back, gateway up on the NEW token."""
    if all_profiles:
        _all_profiles(ctx, "restore", kw)
        return
    _run_runbook(ctx, "restore", "restore", kw)


@cli.group(cls=LazyGroup, invoke_without_command=True, lazy={
    "history": ("moltir.cli.drill:history", "Past drills: when, how long, outcome."),
    "schedule": ("moltir.cli.drill:schedule", "Install, remove or show the drill schedule."),
}, epilog=EXIT_HELP)
@run_options
@click.pass_context
@handle_errors
def drill(ctx: click.Context, /, **kw: Any) -> None:
    """Rotation drill: rotate the token, prove new accepted / old refused, record it.

    \b
    moltir drill                      run the drill now (gateway must be running)
    moltir drill history              past drills
    moltir drill schedule install     run it every week/day (systemd timer / LaunchAgent)
    """
    if ctx.invoked_subcommand is None:
        _run_runbook(ctx, "drill", "drill", kw, new_case=True)


# ---- information ----------------------------------------------------------------------------

@cli.command()
@click.option("--case-dir", type=click.Path(path_type=Path), help="Show this case instead of the latest.")
@click.option("--verify", is_flag=True, help="Also check the journal's hash chain.")
@click.option("--all-profiles", is_flag=True, help="Every install found, one block each.")
@json_option
@install_options
@click.pass_context
@handle_errors
def status(ctx: click.Context, /, case_dir: Path | None, verify: bool, all_profiles: bool, as_json: bool,
           **kw: Any) -> None:
    """The current case: open / contained / restored, which steps are done, since when."""
    from moltir.commands import status as status_mod

    if all_profiles:
        from moltir.commands.profiles import status_all
        from moltir.openclaw.deployments import all_installs

        sys.exit(status_all(all_installs(os.environ), as_json))
    install = get_install(ctx, kw)
    report = status_mod.build(install, case_dir, verify=verify)
    damaged = report.get("status") == "damaged" or (verify and report.get("journal", {}).get("ok") is False)
    if as_json:
        from moltir.result import echo_json, error

        errors = [error(f"the case record is damaged: {report.get('error') or 'the journal chain is broken'}",
                        "'moltir contain' opens a new case; keep this one as evidence", 5)] if damaged else []
        echo_json(report, exit_code=5 if damaged else 0, errors=errors)
    else:
        click.echo(status_mod.render(report))
    if damaged:
        sys.exit(5)


@cli.command()
@json_option
@install_options
@click.pass_context
@handle_errors
def doctor(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """What install moltir finds, and every problem with its fix."""
    from moltir.commands import doctor as doctor_mod

    install = get_install(ctx, kw)
    report = doctor_mod.build(install)
    if as_json:
        from moltir.result import echo_json, error

        echo_json(report, exit_code=0 if report["ok"] else 3,
                  errors=[error(f"{c['check']}: {c['detail']}", "", 3) for c in report["checks"]
                          if c["level"] == "problem"])
    else:
        click.echo(doctor_mod.render(report))
    if not report["ok"]:
        sys.exit(3)


@cli.group()
def runbook() -> None:
    """List, show and validate runbooks."""


@runbook.command("list")
@json_option
@handle_errors
def runbook_list(as_json: bool) -> None:
    """The shipped runbooks."""
    from moltir.engine import runbook as rb

    loaded = [rb.load(rb.resolve(name)) for name in rb.shipped_names()]
    if as_json:
        from moltir.result import echo_json

        echo_json({"runbooks": [{"name": r.name, "description": r.description, "source": r.source,
                                 "steps": [s.id for s in r.steps]} for r in loaded]})
        return
    for r in loaded:
        click.echo(f"{r.name:<10} {r.description}")


def _runbook_json(loaded: Any) -> dict[str, Any]:
    return {"name": loaded.name, "description": loaded.description, "source": loaded.source,
            "steps": [{"id": s.id, "action": s.action, "with": dict(s.params), "on_failure": s.on_failure,
                       "timeout_s": s.timeout_s, "description": s.description or None} for s in loaded.steps]}


@runbook.command("show")
@click.argument("name")
@json_option
@handle_errors
def runbook_show(name: str, as_json: bool) -> None:
    """The steps of a runbook (shipped name or path)."""
    from moltir.engine import runbook as rb

    loaded = rb.load(rb.resolve(name))
    if as_json:
        from moltir.result import echo_json

        echo_json(_runbook_json(loaded))
        return
    click.echo(f"{loaded.name}: {loaded.description}\nsource: {loaded.source}")
    for i, s in enumerate(loaded.steps, 1):
        extra = f" timeout_s={s.timeout_s:g}" if s.timeout_s else ""
        click.echo(f"{i}. {s.id}: {s.action} {json.dumps(dict(s.params))} on_failure={s.on_failure}{extra}")


@runbook.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
@handle_errors
def runbook_validate(path: Path, as_json: bool) -> None:
    """Check a runbook file; errors name the file, line and key (exit 2)."""
    from moltir.engine import runbook as rb

    loaded = rb.load(rb.resolve(str(path)))
    if as_json:
        from moltir.result import echo_json

        echo_json(_runbook_json(loaded))
        return
    click.echo(f"{path}: ok ({len(loaded.steps)} steps)")


@cli.group()
def journal() -> None:
    """Check a case's journal."""


@journal.command("verify")
@click.option("--case-dir", type=click.Path(path_type=Path), help="The case (default: the latest).")
@json_option
@install_options
@click.pass_context
@handle_errors
def journal_verify(ctx: click.Context, /, case_dir: Path | None, as_json: bool, **kw: Any) -> None:
    """Verify the journal's hash chain (exit 5 when broken)."""
    from moltir import engine
    from moltir.engine.case import Case
    from moltir.engine.journal import verify_chain

    case = Case.open(case_dir) if case_dir else engine.find_latest(get_install(ctx, kw))
    if case is None:
        raise MoltirError("no case found for this install", hint="pass --case-dir", exit_code=EXIT_USAGE)
    report = verify_chain(case.journal_path)
    if as_json:
        from moltir.result import echo_json, error

        echo_json({"case_id": case.id, "journal": str(case.journal_path), "records": report.records,
                   "head": report.head, "problems": list(report.problems)}, exit_code=0 if report.ok else 5,
                  errors=[error(p, "treat the case as tampered with or damaged", 5) for p in report.problems])
        if not report.ok:
            sys.exit(5)
        return
    if report.ok:
        click.echo(f"{case.journal_path}: ok, {report.records} records, head {report.head[:16]}")
        return
    for problem in report.problems:
        click.echo(f"{case.journal_path}: {problem}", err=True)
    sys.exit(5)


def _json_requested(argv: list[str]) -> bool:
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main() -> None:
    """The console entry point. Click's own usage errors follow moltir's rules too: one line on
    stderr, exit 2, and with ``--json`` one JSON object on stdout."""
    argv = sys.argv[1:]
    try:
        rv = cli.main(args=argv, prog_name="moltir", standalone_mode=False)
    except click.ClickException as exc:
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
        usage_ctx = getattr(exc, "ctx", None)
        path = usage_ctx.command_path if usage_ctx else "moltir"
        if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # a group named without its command
            group = usage_ctx.command if usage_ctx else None
            names = group.list_commands(usage_ctx) if isinstance(group, click.Group) and usage_ctx else []
            message = f"'{path}' needs a command" + (f": {', '.join(names)}" if names else "")
        else:
            message = " ".join(exc.format_message().split())
        hint = f"see '{path} --help'"
        if _json_requested(argv):
            from moltir.result import echo_json, error

            command = " ".join(path.split()[1:]) or "moltir"
            echo_json(exit_code=code, errors=[error(message, hint, code)], command=command)
        text = message.rstrip(".")
        click.echo(f"moltir: {text}{' ' if text.endswith(('?', '!')) else '. '}{hint}", err=True)
        sys.exit(code)
    except click.Abort:
        if _json_requested(argv):
            from moltir.result import echo_json, error

            echo_json(exit_code=EXIT_INTERRUPTED, errors=[error("interrupted", "", EXIT_INTERRUPTED)],
                      command=" ".join(a for a in argv if not a.startswith("-"))[:60] or "moltir")
        click.echo("moltir: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else 0)
