"""``moltir evidence``: list cases, verify a sealed case, export it, note custody.

Thin click shells over :mod:`moltir.evidence`. CASE is a case folder or a case id (a unique
prefix is enough); without it, the latest case of the selected OpenClaw install.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moltir.cli import EXIT_HELP, _check_free_text, get_install, handle_errors, install_options, json_option
from moltir.errors import EXIT_VERIFY, usage_error, verify_error

if TYPE_CHECKING:
    from moltir.openclaw import Install


def _case_id(folder: Path) -> str:
    try:
        info = json.loads((folder / "case.json").read_text(encoding="utf-8"))
        return str(info.get("case_id") or folder.name)
    except (OSError, ValueError, AttributeError):
        return folder.name


def _known_cases(env: Any) -> list[Path]:
    """Every case moltir knows of: the folders under the cases root, and the cases each install's index
    names (a case made with ``--case-dir`` lives elsewhere; ``evidence list`` shows it too)."""
    from moltir import paths

    root = paths.cases_root(env)
    found = [p for p in root.iterdir() if (p / "case.json").is_file()] if root.is_dir() else []
    index = paths.installs_dir(env)
    for entry in sorted(index.glob("*.json")) if index.is_dir() else []:
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for key in ("latest_case", "latest_drill", "latest_harden"):
            folder = Path(str(data.get(key) or ""))
            if data.get(key) and (folder / "case.json").is_file():
                found.append(folder)
    return found


def resolve_case(arg: str | None, install: Install | None) -> Path:
    """The case folder ``arg`` names (a folder, a case id or a unique id prefix), or the
    install's latest case when ``arg`` is None."""
    from moltir import paths
    from moltir.engine.case import latest_case_dir

    env = install.env if install is not None else os.environ
    root = paths.cases_root(env)
    if arg is None:
        latest = latest_case_dir(paths.installs_dir(env), install.key) if install is not None else None
        if latest is None:
            where = f" ({install.state_dir})" if install is not None else ""
            raise usage_error(f"no case yet for this install{where}",
                              "pass a case folder or id; 'moltir evidence list' shows them")
        return latest
    path = Path(arg).expanduser()
    if (path / "case.json").is_file():
        return path
    if "/" not in arg:
        known = _known_cases(env)
        exact = [p for p in known if _case_id(p) == arg]
        if exact:
            return exact[0]
        matches = sorted({os.path.realpath(p): p for p in known if _case_id(p).startswith(arg)}.values())
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise usage_error(f"case id prefix {arg!r} matches {len(matches)} cases",
                              "give more of the id ('moltir evidence list' shows them)")
    raise usage_error(f"no case {arg!r}: not a case folder, and no case with that id under {root}",
                      "run 'moltir evidence list' to see the cases")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _emit_json(obj: Any, exit_code: int = 0, errors: Any = ()) -> None:
    from moltir.result import echo_json

    echo_json(obj, exit_code=exit_code, errors=errors)


@click.group(epilog=EXIT_HELP)
def evidence() -> None:
    """List, verify, export evidence; custody notes.

    \b
    moltir evidence list                      cases with state (sealed, incomplete ...) and size
    moltir evidence verify [CASE]             every hash, missing/extra files, seal, journal (exit 5 if not)
    moltir evidence export [CASE] -o F.tar.gz deterministic archive; its hash goes to custody.jsonl
    moltir evidence custody [CASE] --note T   append who/when/why to custody.jsonl

    CASE is a case folder or case id (default: the install's latest case).
    """


@evidence.command("list")
@json_option
@install_options
@click.pass_context
@handle_errors
def list_cmd(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """Cases with their evidence state and size (oldest first)."""
    from moltir import evidence as lib
    from moltir import paths
    from moltir.engine.case import latest_case_dir

    install = get_install(ctx, kw)
    latest = latest_case_dir(paths.installs_dir(install.env), install.key)
    cases = lib.list_cases(paths.cases_root(install.env), [latest] if latest else [])
    latest_real = os.path.realpath(latest) if latest else None
    if as_json:
        _emit_json({"cases": [{**c.to_json(), "latest_for_install": os.path.realpath(c.path) == latest_real}
                              for c in cases]})
        return
    if not cases:
        click.echo(f"no cases under {paths.cases_root(install.env)}")
        return
    click.echo(f"{'CASE':<24} {'STATE':<12} {'SIZE':>10}  {'KIND':<8} PATH")
    for c in cases:
        mark = " (latest for this install)" if os.path.realpath(c.path) == latest_real else ""
        click.echo(f"{c.id:<24} {c.state:<12} {_size(c.size):>10}  {c.kind:<8} {c.path}{mark}")


@evidence.command("verify", epilog=EXIT_HELP)
@click.argument("case", required=False)
@json_option
@install_options
@click.pass_context
@handle_errors
def verify_cmd(ctx: click.Context, /, case: str | None, as_json: bool, **kw: Any) -> None:
    """Check every hash, missing and extra files, the seal and the journal chain (exit 5 if not ok)."""
    from moltir import evidence as lib

    folder = resolve_case(case, get_install(ctx, kw) if case is None else None)
    report = lib.verify(folder)
    if as_json:
        from moltir.result import error

        _emit_json(report.to_json(), EXIT_VERIFY if not report.ok else 0,
                   [error(report.summary(), "treat this case as tampered with or damaged", EXIT_VERIFY)]
                   if not report.ok else [])
        if not report.ok:
            sys.exit(EXIT_VERIFY)
        return
    for line in report.lines():
        click.echo(line)
    for path in report.added_after_seal:
        click.echo(f"added after seal (not covered, not a failure): {path}")
    if not report.ok:
        raise verify_error(report.summary(), "treat this case as tampered with or damaged; the lines above "
                                             "name every problem")
    click.echo(report.summary())


@evidence.command("export", epilog=EXIT_HELP)
@click.argument("case", required=False)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The archive to write (FILE.tar.gz; never overwritten).")
@click.option("--encrypt", "recipients", multiple=True, metavar="RECIPIENT",
              help="Encrypt the archive with age to this public key (age1..., or ssh-ed25519/ssh-rsa ...); "
                   "repeatable. Recorded in the custody log.")
@json_option
@install_options
@click.pass_context
@handle_errors
def export_cmd(ctx: click.Context, /, case: str | None, output: Path, recipients: tuple[str, ...], as_json: bool,
               **kw: Any) -> None:
    """Write a deterministic tar.gz of the case; its SHA-256 goes to the case's custody log.

    The case holds secrets (the pre-incident config with its tokens, channel credentials, session
    transcripts): keep the archive private, or encrypt it for its recipient with --encrypt."""
    from moltir import evidence as lib

    folder = resolve_case(case, get_install(ctx, kw) if case is None else None)
    res = lib.export(folder, output, recipients)
    exposure = ("the archive holds secrets (the pre-incident config with its tokens, channel credentials, "
                   "transcripts): keep it private, or export it with --encrypt RECIPIENT")
    if as_json:
        _emit_json({"archive": str(res.path), "sha256": res.sha256, "size": res.size, "members": res.members,
                    "case_state": res.state, "case_dir": str(folder), "encrypted": bool(recipients),
                    "warnings": [] if recipients else [exposure]})
        return
    if not recipients:
        click.echo(f"warning: {exposure}", err=True)
    else:
        click.echo(f"encrypted with age to {len(recipients)} recipient(s); decrypt with 'age -d -i KEY'")
    if res.state != "sealed":
        click.echo(f"warning: the case's evidence is {res.state}, not sealed", err=True)
    click.echo(f"{res.path}: {_size(res.size)}, {res.members} entries")
    click.echo(f"sha256 {res.sha256}")
    click.echo(f"custody log: {folder / lib.CUSTODY}")


@evidence.command("custody", epilog=EXIT_HELP)
@click.argument("case", required=False)
@click.option("--note", required=True, callback=_check_free_text,
              help="Who took custody, where it went, why (at most 2000 characters).")
@json_option
@install_options
@click.pass_context
@handle_errors
def custody_cmd(ctx: click.Context, /, case: str | None, note: str, as_json: bool, **kw: Any) -> None:
    """Append a custody note (who, when, why) to the case's custody.jsonl."""
    from moltir import evidence as lib

    folder = resolve_case(case, get_install(ctx, kw) if case is None else None)
    record = lib.custody(folder, note)
    if as_json:
        _emit_json({"case_dir": str(folder), "record": record})
        return
    click.echo(f"custody record #{int(record['seq']) + 1} appended to {folder / lib.CUSTODY}")
