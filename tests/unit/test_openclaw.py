from __future__ import annotations

import json
from pathlib import Path

import pytest

from moltir.errors import MoltirError
from moltir.openclaw import discover, profile_port


def _pkg(root: Path, name: str, version: str, secrets: bool) -> Path:
    pkg = root / "node_modules" / name
    (pkg / "dist").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": name, "version": version}))
    if secrets:
        (pkg / "docs" / "gateway" / "secrets").mkdir(parents=True)
    entry = pkg / ("openclaw.mjs" if name == "openclaw" else "dist/entry.js")
    entry.write_text("#!/usr/bin/env node\n")
    entry.chmod(0o755)
    bindir = root / "bin"
    bindir.mkdir()
    (bindir / name).symlink_to(entry)
    return bindir


def test_profile_port_matches_openclaw() -> None:
    assert profile_port("work") == 41984  # openclaw-facts.md §1


def test_defaults_and_precedence(tmp_path: Path) -> None:
    home = tmp_path / "h"
    env = {"HOME": str(home), "PATH": ""}
    inst = discover(env=env)
    assert inst.state_dir == home / ".openclaw" and inst.config_path == home / ".openclaw" / "openclaw.json"
    inst = discover(env={**env, "OPENCLAW_STATE_DIR": "~/s", "OPENCLAW_CONFIG_PATH": str(tmp_path / "c.json")})
    assert inst.state_dir == home / "s" and inst.config_path == tmp_path / "c.json"
    inst = discover(profile="work", env=env)
    assert inst.state_dir == home / ".openclaw-work" and inst.gateway_port() == 41984
    assert discover(dev=True, env=env).gateway_port() == 19001
    inst = discover(state_dir=str(tmp_path / "x"), env={**env, "OPENCLAW_STATE_DIR": "/nope"})
    assert inst.state_dir == tmp_path / "x"


def test_openclaw_home_relocates_defaults(tmp_path: Path) -> None:
    inst = discover(env={"HOME": str(tmp_path / "a"), "OPENCLAW_HOME": str(tmp_path / "b"), "PATH": ""})
    assert inst.state_dir == tmp_path / "b" / ".openclaw"


def test_legacy_clawdbot_layout_is_found(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / ".clawdbot").mkdir(parents=True)
    (home / ".clawdbot" / "clawdbot.json").write_text("{}")
    inst = discover(env={"HOME": str(home), "PATH": ""})
    assert inst.state_dir == home / ".clawdbot" and inst.config_path.name == "clawdbot.json"
    assert inst.product == "clawdbot"
    inst = discover(env={"HOME": str(tmp_path), "CLAWDBOT_STATE_DIR": str(home / ".clawdbot"), "PATH": ""})
    assert inst.state_dir == home / ".clawdbot"


@pytest.mark.parametrize(("release", "honoured"), [("2026.1.29", True), ("2026.3.13", True),
                                                    ("2026.3.22", False), ("2026.9.6", False)])
def test_clawdbot_state_dir_variable_only_where_the_release_honours_it(tmp_path: Path, release: str,
                                                                        honoured: bool) -> None:
    bindir = _pkg(tmp_path, "openclaw", release, False)
    legacy = tmp_path / "legacy-state"
    inst = discover(env={"HOME": str(tmp_path / "h"), "CLAWDBOT_STATE_DIR": str(legacy), "PATH": str(bindir)})
    assert (inst.state_dir == legacy) is honoured
    assert bool(inst.notes) is not honoured  # a variable this release ignores is named


@pytest.mark.parametrize(("release", "dirs"), [("2026.2.9", ".moltbot"), ("2026.2.25", ".moldbot"),
                                               ("2026.3.22", ".moldbot"), ("2026.3.31", ".openclaw")])
def test_legacy_state_dirs_follow_the_release(tmp_path: Path, release: str, dirs: str) -> None:
    bindir = _pkg(tmp_path, "openclaw", release, False)
    home = tmp_path / "h"
    for d in (".moltbot", ".moldbot"):
        (home / d).mkdir(parents=True)
    assert discover(env={"HOME": str(home), "PATH": str(bindir)}).state_dir == home / dirs


@pytest.mark.parametrize(("name", "version", "secretref", "signal"), [
    ("openclaw", "2026.9.6", True, "SIGUSR2"),
    ("openclaw", "2026.9.5", True, "SIGUSR1"),
    ("openclaw", "2026.3.2", False, "SIGUSR1"),
    ("openclaw", "2026.1.29", False, None),   # SIGUSR1 only with commands.restart: true before 2026.2.26
    ("clawdbot", "2026.1.24", False, None),
])
def test_capabilities_come_from_the_package_version(tmp_path: Path, name: str, version: str, secretref: bool,
                                                     signal: str | None) -> None:
    bindir = _pkg(tmp_path, name, version, False)
    inst = discover(env={"HOME": str(tmp_path / "h"), "PATH": str(bindir)})
    assert inst.product == name and inst.version == version
    assert inst.caps.gateway_token_secretref is secretref
    assert inst.caps.restart_signal({}) == signal
    assert "package.json" in inst.caps.basis


def test_newer_release_than_known_gets_the_newest_answers_and_a_warning(tmp_path: Path) -> None:
    bindir = _pkg(tmp_path, "openclaw", "2027.1.0", False)
    inst = discover(env={"HOME": str(tmp_path / "h"), "PATH": str(bindir)})
    assert inst.caps.restart_signal({}) == "SIGUSR2" and inst.caps.state_store == "sqlite"
    assert any("newer than 2026.9.6" in w for w in inst.caps.warnings)


def test_plain_script_binary_is_asked_for_its_version(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "openclaw"
    script.write_text("#!/bin/sh\n[ \"$1\" = --version ] && echo 'OpenClaw 2026.5.28 (abc1234)'\n")
    script.chmod(0o755)
    inst = discover(env={"HOME": str(tmp_path / "h"), "PATH": f"{bindir}:/usr/bin:/bin"})
    assert inst.package is None and inst.version == "2026.5.28"
    assert inst.caps.basis.endswith("--version") and inst.caps.restart_signal({}) == "SIGUSR1"


def test_no_binary_falls_back_to_the_configs_last_touched_version(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "openclaw.json").write_text('{ meta: { lastTouchedVersion: "2026.7.35" } }')
    inst = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    assert inst.version == "2026.7.35" and "lastTouchedVersion" in inst.caps.basis
    assert inst.caps.googlechat_dm_key == "dm.policy"


def test_no_version_at_all_reasons_from_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "s"
    (state / "tmp" / "openclaw-0").mkdir(parents=True)
    (state / "tmp" / "openclaw-0" / "gateway.abc.lock").write_text("{}")
    inst = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    assert inst.version is None and inst.caps.googlechat_dm_key == "dmPolicy"  # 2026.8.1 or later
    assert "state dir" in inst.caps.answer("googlechat_dm_key").source
    assert inst.caps.restart_signal({}) is None  # SIGUSR1 or SIGUSR2: not known, so no signal
    bare = discover(state_dir=str(tmp_path / "empty"), env={"HOME": str(tmp_path), "PATH": ""})
    assert bare.caps.googlechat_dm_key is None and bare.caps.gateway_token_secretref is False
    assert any("unknown" in w for w in bare.caps.warnings)


def test_child_env_strips_inherited_credentials(tmp_path: Path) -> None:
    inst = discover(env={"HOME": str(tmp_path), "PATH": "", "OPENCLAW_GATEWAY_TOKEN": "leak"})
    env = inst.child_env()
    assert "OPENCLAW_GATEWAY_TOKEN" not in env and env["OPENCLAW_STATE_DIR"] == str(inst.state_dir)


def test_bad_profile_and_missing_binary_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MoltirError) as err:
        discover(profile="../x", env={"HOME": str(tmp_path), "PATH": ""})
    assert err.value.exit_code == 2
    with pytest.raises(MoltirError) as err:
        discover(openclaw_bin=str(tmp_path / "nope"), env={"HOME": str(tmp_path), "PATH": ""})
    assert err.value.exit_code == 3


def test_default_log_dirs_include_the_per_user_fallback(tmp_path: Path) -> None:
    # 2026.9.x logs to <os.tmpdir()>/openclaw-<uid> when /tmp/openclaw is not safe for the user
    # (another user's, group/world-writable, a symlink): with TMPDIR unset that is /tmp/openclaw-<uid>
    import os

    uid = os.getuid()
    inst = discover(env={"HOME": str(tmp_path), "PATH": ""})
    assert inst.tmp_log_dirs() == [Path("/tmp/openclaw"), Path("/tmp/clawdbot"), Path(f"/tmp/openclaw-{uid}")]
    inst = discover(env={"HOME": str(tmp_path), "PATH": "", "TMPDIR": str(tmp_path / "t")})
    assert Path(f"/tmp/openclaw-{uid}") not in inst.tmp_log_dirs()
    assert {tmp_path / "t" / "openclaw", tmp_path / "t" / f"openclaw-{uid}"} <= set(inst.tmp_log_dirs())


def test_a_config_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    from moltir.openclaw import parse_config_text

    path = tmp_path / "openclaw.json"
    with pytest.raises(MoltirError) as err:
        parse_config_text('{\n  a: 1\n  b: 2\n}\n', path)
    assert err.value.exit_code == 2 and err.value.message.startswith(f"{path}:3:3:")


def test_a_config_that_is_not_utf8_or_a_folder_is_exit_2_not_a_crash(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = state / "openclaw.json"
    config.write_bytes(b'{ channels: { slack: { dmPolicy: "op\xffen" } } }\n')
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    with pytest.raises(MoltirError) as err:
        install.read_config()
    assert err.value.exit_code == 2 and "not UTF-8" in err.value.message and "offset 36" in err.value.message
    config.unlink()
    config.mkdir()
    with pytest.raises(MoltirError) as err:
        install.read_config()
    assert err.value.exit_code == 2 and "is a directory" in err.value.message


def test_reading_a_config_needs_no_json5_parse_and_agrees_with_json5(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """gateway.stop reads the config (its port) before it signals: moltir's scanner reads it, the slow
    json5 parse is kept for edits. Duplicate keys (which the scanner refuses) read as json5 reads them."""
    import json5

    from moltir.openclaw import parse_config_text

    text = "// c\n{ gateway: { port: 18789, auth: { token: 'x' } }, channels: { slack: { dmPolicy: 'open', }, }, }\n"
    want = json5.loads(text)

    def refuse(*_a: object, **_k: object) -> object:
        raise AssertionError("json5.loads called while reading")

    monkeypatch.setattr(json5, "loads", refuse)
    got = parse_config_text(text, tmp_path / "openclaw.json")
    assert got == want
    got["gateway"]["port"] = 1      # a fresh copy: the cached reading is not changed
    assert parse_config_text(text, tmp_path / "openclaw.json") == want
    monkeypatch.undo()
    assert parse_config_text("{ a: 1, a: 2 }", tmp_path / "openclaw.json") == {"a": 2}
