"""Every command has help and is named in the README (as sqlite-utils checks its docs)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from moltir.cli import cli
from moltir.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# the README opens with the incident; the reference lives in docs/
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))
EXIT_DOC = (ROOT / "docs" / "exit-codes.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    out: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"command {name} failed to load"
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
    return out


ALL = _commands(cli)


@pytest.mark.parametrize("path", ALL, ids=[" ".join(p) for p in ALL])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    ctx = click.Context(cli)
    cmd: click.Command | None = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.get_command(ctx, name)
    assert cmd is not None and (cmd.help or cmd.short_help), f"{' '.join(path)} has no help text"


@pytest.mark.parametrize("path", [p for p in ALL if len(p) == 1], ids=lambda p: p[0])
def test_every_top_level_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert re.search(rf"moltir {re.escape(path[0])}\b", DOCS), f"README/docs do not mention 'moltir {path[0]}'"


def test_readme_documents_every_exit_code() -> None:
    for code in EXIT_CODES:
        assert re.search(rf"^\| {code} \|", EXIT_DOC, re.M), f"exit code {code} missing from docs/exit-codes.md"


def test_the_readme_opens_with_the_incident_and_links_the_reference() -> None:
    first = README.split("\n## ")[1]
    assert first.startswith("In an incident") and "moltir contain" in first and "moltir restore" in first
    assert "make demo" in README and "make test" in README
    for link in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / link).is_file(), link


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "moltir" in result.output
