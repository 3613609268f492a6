"""configfile: load with includes, owner_of, plan_edits and safe writes; every refusal leaves the files alone."""

from __future__ import annotations

import os
from pathlib import Path

import json5
import pytest

from moltir.engine.case import Case
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, EXIT_USAGE, MoltirError
from moltir.openclaw.configfile import ConfigFile, sha256
from moltir.openclaw.json5edit import DELETE

MAIN = """// main config
{
  meta: { lastTouchedVersion: "2026.9.6" },
  gateway: { mode: "local" },
  channels: {
    telegram: { $include: "./channels/telegram.json5" },
    slack: { dmPolicy: "open" },
  },
}
"""
TELEGRAM = """{
  // included
  enabled: true,
  dmPolicy: "pairing",
}
"""


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    write(state / "channels" / "telegram.json5", TELEGRAM)
    return write(state / "openclaw.json", MAIN)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def case_in(tmp_path: Path) -> Case:
    return Case.create(tmp_path / "case", kind="contain", install_info={}, reason="test")


# ---- load --------------------------------------------------------------------------------------

def test_load_resolves_includes_and_keeps_bytes(layout: Path) -> None:
    cfg = ConfigFile.load_path(layout, env={})
    assert cfg.data["channels"]["telegram"] == {"enabled": True, "dmPolicy": "pairing"}
    assert cfg.preimage == layout.read_bytes()
    assert cfg.identity.sha256 == sha256(layout.read_bytes())
    assert cfg.owner_of(("channels", "telegram", "dmPolicy")) == (
        layout.parent / "channels" / "telegram.json5", ("dmPolicy",))
    assert cfg.owner_of(("channels", "telegram", "accounts", "x", "dmPolicy")) == (
        layout.parent / "channels" / "telegram.json5", ("accounts", "x", "dmPolicy"))
    assert cfg.owner_of(("channels", "slack", "dmPolicy")) == (layout, ("channels", "slack", "dmPolicy"))
    assert cfg.location(("channels", "telegram", "dmPolicy")).endswith("telegram.json5:4:13")


def test_include_array_and_siblings_merge_like_openclaw(tmp_path: Path) -> None:
    write(tmp_path / "a.json5", '{ x: { list: [1], keep: "a" } }')
    write(tmp_path / "b.json5", '{ x: { list: [2], keep: "b" } }')
    main = write(tmp_path / "openclaw.json", '{ gateway: { mode: "local" }, '
                                             'channels: { $include: ["./a.json5", "./b.json5"], y: {} } }')
    cfg = ConfigFile.load_path(main, env={})
    assert cfg.data["channels"] == {"x": {"list": [1, 2], "keep": "b"}, "y": {}}
    with pytest.raises(MoltirError) as err:
        cfg.owner_of(("channels", "x", "dmPolicy"))
    assert err.value.exit_code == EXIT_ENV and "merges several files" in err.value.message


# ---- bad inputs: message, exit code, nothing changed ------------------------------------------

def _refused(path: Path, *, env: dict[str, str] | None = None, code: int, words: str) -> None:
    before = snapshot(path.parent)
    with pytest.raises(MoltirError) as err:
        cfg = ConfigFile.load_path(path, env=env or {})
        cfg.write(cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"}))
    assert err.value.exit_code == code, err.value.one_line()
    assert words in err.value.one_line()
    assert "\n" not in err.value.one_line()
    assert snapshot(path.parent) == before


def test_malformed_json5_is_refused_with_line_and_column(tmp_path: Path) -> None:
    text = '{\n  gateway: { mode: "local" },\n  channels: { slack: { dmPolicy: } }\n}'
    path = write(tmp_path / "openclaw.json", text)
    _refused(path, code=EXIT_USAGE, words=f"{path}:3:34: unexpected '}}', expected a value")


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = '{\n  channels: {\n    slack: { dmPolicy: "open", dmPolicy: "disabled" },\n  },\n}'
    path = write(tmp_path / "openclaw.json", text)
    _refused(path, code=EXIT_USAGE, words=f"{path}:3:32: duplicate key 'dmPolicy'")


def test_symlinked_config_is_refused(tmp_path: Path) -> None:
    text = MAIN.replace('telegram: { $include: "./channels/telegram.json5" },', "")
    real = write(tmp_path / "real" / "openclaw.json", text)
    link = tmp_path / "state" / "openclaw.json"
    link.parent.mkdir()
    link.symlink_to(real)
    _refused(link, code=EXIT_ENV, words="is a symlink")
    assert link.is_symlink()


@pytest.mark.parametrize("var", ["OPENCLAW_CONFIG_READONLY", "OPENCLAW_NIX_MODE", "CLAWDBOT_NIX_MODE"])
def test_read_only_environment_is_refused(layout: Path, var: str) -> None:
    _refused(layout, env={var: "1"}, code=EXIT_ENV, words=f"read-only ({var}=1)")


def test_include_outside_the_config_dir_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "channels.json5", '{ slack: { dmPolicy: "open" } }')
    path = write(tmp_path / "state" / "openclaw.json",
                 f'{{ gateway: {{ mode: "local" }}, channels: {{ $include: "{outside}" }} }}')
    # OpenClaw itself refuses it (not under OPENCLAW_INCLUDE_ROOTS): bad input
    _refused(path, code=EXIT_USAGE, words=f"$include '{outside}' at channels")
    # allowed for reading by OPENCLAW_INCLUDE_ROOTS, but moltir writes only inside the config dir
    _refused(path, env={"OPENCLAW_INCLUDE_ROOTS": str(outside.parent)}, code=EXIT_ENV,
             words=f"lives in {outside}, included by the $include at {path}:1:43")


def test_include_through_a_symlink_leaving_the_config_dir_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "channels.json5", '{ slack: { dmPolicy: "open" } }')
    state = tmp_path / "state"
    state.mkdir()
    (state / "channels.json5").symlink_to(outside)
    path = write(state / "openclaw.json", '{ channels: { $include: "./channels.json5" } }')
    _refused(path, code=EXIT_USAGE, words="points outside the config directory")


def test_config_missing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MoltirError) as err:
        ConfigFile.load_path(tmp_path / "openclaw.json", env={})
    assert err.value.exit_code == EXIT_ENV
    assert f"no OpenClaw config at {tmp_path / 'openclaw.json'}" in err.value.one_line()
    assert not (tmp_path / "openclaw.json").exists()


def test_missing_include_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "openclaw.json", '{ channels: { $include: "./nope.json5" } }')
    _refused(path, code=EXIT_USAGE, words="does not exist")


@pytest.mark.parametrize(("value", "kind"), [("[]", "a list"), ('"telegram"', "a string"), ("null", "null")])
def test_channels_not_an_object_is_refused(tmp_path: Path, value: str, kind: str) -> None:
    path = write(tmp_path / "openclaw.json", f'{{\n  gateway: {{ mode: "local" }},\n  channels: {value},\n}}')
    _refused(path, code=EXIT_USAGE, words=f"{path}:3:13: channels is {kind}, expected an object")


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "openclaw.json"
    path.write_bytes(b'{ a: "\xff" }')
    _refused(path, code=EXIT_USAGE, words="not UTF-8")


def test_concurrent_modification_is_refused(layout: Path, tmp_path: Path) -> None:
    cfg = ConfigFile.load_path(layout, env={})
    edits = cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"})
    meanwhile = layout.read_text().replace("// main config", "// edited by a human meanwhile")
    layout.write_text(meanwhile)
    case = case_in(tmp_path)
    with pytest.raises(MoltirError) as err:
        cfg.write(edits, case=case)
    assert err.value.exit_code == EXIT_STEP_FAILED
    assert "changed on disk since moltir read it; nothing written" in err.value.one_line()
    assert layout.read_text() == meanwhile
    assert not (case.dir / "preimage").exists()


def test_meta_and_gateway_mode_are_never_edited(layout: Path) -> None:
    cfg = ConfigFile.load_path(layout, env={})
    for path in [("meta",), ("meta", "lastTouchedVersion"), ("gateway", "mode"), ("gateway",)]:
        with pytest.raises(MoltirError, match=r"meta and gateway\.mode"):
            cfg.plan_edits({path: DELETE})


# ---- write -------------------------------------------------------------------------------------

def test_write_lands_in_the_owning_include_saves_preimages_keeps_mode(layout: Path, tmp_path: Path) -> None:
    include = layout.parent / "channels" / "telegram.json5"
    include.chmod(0o640)
    before_main, before_inc = layout.read_bytes(), include.read_bytes()
    cfg = ConfigFile.load_path(layout, env={})
    planned = cfg.plan_edits({("channels", "telegram", "dmPolicy"): "disabled",
                              ("channels", "telegram", "accounts", "ops", "dmPolicy"): "disabled",
                              ("channels", "slack", "dmPolicy"): "disabled"})
    assert {fe.path for fe in planned} == {layout, include}
    assert all(fe.diff.startswith(f"--- {fe.path} (now)") for fe in planned)
    case = case_in(tmp_path)
    results = cfg.write(planned, case=case)
    assert {r.preimage for r in results} == {"preimage/openclaw.json", "preimage/channels/telegram.json5"}
    assert (case.dir / "preimage" / "openclaw.json").read_bytes() == before_main
    assert (case.dir / "preimage" / "channels" / "telegram.json5").read_bytes() == before_inc
    assert json5.loads(include.read_text()) == {"enabled": True, "dmPolicy": "disabled",
                                                "accounts": {"ops": {"dmPolicy": "disabled"}}}
    assert "// included" in include.read_text()
    assert include.stat().st_mode & 0o777 == 0o640
    assert layout.stat().st_mode & 0o777 == 0o600
    assert not list(layout.parent.glob(".*.tmp"))
    # a second identical plan is empty: idempotent
    assert ConfigFile.load_path(layout, env={}).plan_edits(
        {("channels", "telegram", "dmPolicy"): "disabled"}) == []


def test_write_nothing_when_nothing_changes(layout: Path) -> None:
    cfg = ConfigFile.load_path(layout, env={"OPENCLAW_CONFIG_READONLY": "1"})
    assert cfg.plan_edits({("channels", "slack", "dmPolicy"): "open"}) == []
    assert cfg.write([]) == []  # read-only only matters when something would be written


def test_a_failed_second_file_puts_the_first_back(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    include = layout.parent / "channels" / "telegram.json5"
    before = snapshot(layout.parent)
    cfg = ConfigFile.load_path(layout, env={})
    planned = cfg.plan_edits({("channels", "telegram", "dmPolicy"): "disabled",
                              ("channels", "slack", "dmPolicy"): "disabled"})
    import moltir.openclaw.configfile as mod

    real = mod.atomic_write
    calls: list[Path] = []

    def flaky(path: Path, data: bytes, **kw: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise MoltirError("disk full while writing", exit_code=EXIT_STEP_FAILED)
        real(path, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mod, "atomic_write", flaky)
    with pytest.raises(MoltirError, match="disk full"):
        cfg.write(planned)
    assert snapshot(layout.parent) == before
    assert include in calls or layout in calls


def test_symlinked_include_inside_the_dir_is_not_written_through(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write(state / "real" / "tg.json5", '{ dmPolicy: "open" }')
    (state / "tg.json5").symlink_to(state / "real" / "tg.json5")
    main = write(state / "openclaw.json", '{ channels: { telegram: { $include: "./tg.json5" } } }')
    cfg = ConfigFile.load_path(main, env={})
    planned = cfg.plan_edits({("channels", "telegram", "dmPolicy"): "disabled"})
    before = snapshot(state)
    with pytest.raises(MoltirError) as err:
        cfg.write(planned)
    assert err.value.exit_code == EXIT_ENV and "symlink" in err.value.message
    assert snapshot(state) == before and (state / "tg.json5").is_symlink()


def test_root_include_fails_closed(tmp_path: Path) -> None:
    write(tmp_path / "base.json5", '{ channels: { slack: { dmPolicy: "open" } } }')
    main = write(tmp_path / "openclaw.json", '{ $include: "./base.json5", gateway: { mode: "local" } }')
    cfg = ConfigFile.load_path(main, env={})
    assert cfg.data["channels"]["slack"]["dmPolicy"] == "open"
    with pytest.raises(MoltirError) as err:
        cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"})
    assert err.value.exit_code == EXIT_ENV and "top level" in err.value.message


def test_owner_mode_preserved_for_group_readable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "openclaw.json", '{ channels: { slack: { dmPolicy: "open" } } }', mode=0o644)
    cfg = ConfigFile.load_path(path, env={})
    cfg.write(cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"}))
    assert path.stat().st_mode & 0o777 == 0o644
    assert path.stat().st_uid == os.getuid()


def test_ctrl_c_mid_write_leaves_no_temp_file_and_the_config_as_it_was(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    main = write(tmp_path / "state" / "openclaw.json", '{ channels: { slack: { dmPolicy: "open" } } }\n')
    cfg = ConfigFile.load_path(main, env={})
    planned = cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"})
    before = snapshot(main.parent)
    import moltir.fsutil as fsutil

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cfg.write(planned)
    monkeypatch.undo()
    assert snapshot(main.parent) == before and sorted(p.name for p in main.parent.iterdir()) == ["openclaw.json"]


def test_temp_files_of_a_killed_moltir_are_removed_at_the_next_write(tmp_path: Path) -> None:
    import subprocess
    import sys

    main = write(tmp_path / "openclaw.json", '{ channels: { slack: { dmPolicy: "open" } } }\n')
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f".openclaw.json.moltir-{int(dead.stdout)}.tmp"  # kill -9 mid-write
    stale.write_text('{ channels: { slack: { dmPo')
    alive = tmp_path / f".openclaw.json.moltir-{os.getppid()}.tmp"  # a live process: not ours to touch
    alive.write_text("x")
    cfg = ConfigFile.load_path(main, env={})
    cfg.write(cfg.plan_edits({("channels", "slack", "dmPolicy"): "disabled"}))
    assert not stale.exists() and alive.exists()
    assert json5.loads(main.read_text())["channels"]["slack"]["dmPolicy"] == "disabled"
