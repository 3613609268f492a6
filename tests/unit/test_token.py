"""token.rotate / token.verify against a file-backed fake keyring and a token-checking fake gateway.

The real gateway and the real Secret Service are in tests/integration/test_token_real.py; here the
fake gateway (tests/unit/fake_tokengw.py) resolves tokens the way OpenClaw does (config file watch,
SIGUSR2, exec provider with passEnv only), so the routes token.rotate takes are pinned by what
the fake sees, not by mocks of the action.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import json5
import keyring
import pytest
from tests.unit.releasefix import pin

from moltir import keystore
from moltir.actions.base import RunOptions, StepContext, StepResult
from moltir.actions.token import ROLLBACK_KEY, Rotate, Verify, config_backups, read_env_file
from moltir.engine.case import Case
from moltir.errors import EXIT_ENV, EXIT_USAGE, EXIT_VERIFY, MoltirError
from moltir.openclaw import Install
from moltir.redaction import fingerprint

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import fake_tokengw  # noqa: E402
import keyring_fakes as fakes  # noqa: E402
from fakegw import free_port  # noqa: E402

OLD = "old-token-" + "a" * 40

CONFIG = """\
// my gateway
{
  meta: { lastTouchedVersion: "2026.9.6" },
  gateway: {
    mode: "local", // keep me
    port: PORT,
    auth: {
      mode: "token",
      token: "OLD",
    },
  },
  hooks: { token: "HOOKS" },
}
"""


def make_install(tmp_path: Path, *, release: str = "2026.9.6", hooks: str = "hooks-own-token-123",
                 port: int = 18789) -> Install:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    state.chmod(0o700)
    cfg = state / "openclaw.json"
    cfg.write_text(CONFIG.replace("PORT", str(port)).replace("OLD", OLD).replace("HOOKS", hooks))
    cfg.chmod(0o600)
    env = dict(os.environ)
    env.update(OPENCLAW_STATE_DIR=str(state), OPENCLAW_CONFIG_PATH=str(cfg))
    return pin(Install(home=Path(env["HOME"]), state_dir=state, config_path=cfg, profile=None, binary=None,
                       package=None, env=env), release)


def make_ctx(install: Install, tmp_path: Path, params: dict[str, Any] | None = None, *,
             action: type[Rotate] | type[Verify] = Rotate, shared: dict[str, Any] | None = None,
             **options: Any) -> StepContext:
    folder = tmp_path / "case"
    case = Case.open(folder) if (folder / "case.json").exists() else Case.create(
        folder, kind="test", install_info=install.describe(), reason="unit test")
    merged = {k: p.default for k, p in action.params.items()}
    merged.update(params or {})
    return StepContext(install=install, case=case, journal=case.journal(), params=merged, step_id="s",
                       runbook="test", timeout_s=None, options=RunOptions(**options),
                       shared={} if shared is None else shared)


@pytest.fixture(autouse=True)
def file_keyring(tmp_path: Path) -> Iterator[fakes.FileKeyring]:
    """The parent uses FileKeyring directly; a child (the helper) finds it through keyringrc.cfg."""
    home = Path(os.environ["HOME"])
    cfg = home / ".config" / "python_keyring"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "keyringrc.cfg").write_text(f"[backend]\ndefault-keyring=keyring_fakes.FileKeyring\nkeyring-path={HERE}\n")
    before = keyring.get_keyring()
    kr = fakes.FileKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


def rotate(ctx: StepContext) -> StepResult:
    action = Rotate()
    action.plan(ctx)
    result = action.apply(ctx)
    action.verify(ctx, result)
    return result


def all_case_text(case: Case, *, skip: tuple[str, ...] = ()) -> str:
    out = []
    for p in case.dir.rglob("*"):
        if p.is_file() and not any(str(p.relative_to(case.dir)).startswith(s) for s in skip):
            out.append(p.read_text(errors="replace"))
    return "\n".join(out)


# ---- mode -----------------------------------------------------------------------------------

def test_keyring_ref_is_refused_where_there_are_no_secret_refs(tmp_path: Path) -> None:
    install = make_install(tmp_path, release="2026.1.29")
    ctx = make_ctx(install, tmp_path, {"mode": "keyring-ref"})
    before = install.config_path.read_bytes()
    with pytest.raises(MoltirError) as err:
        Rotate().apply(ctx)
    assert err.value.exit_code == EXIT_USAGE and "plaintext" in err.value.hint
    assert install.config_path.read_bytes() == before


# ---- gateway down: the contain case ------------------------------------------------------------

def test_rotate_to_keyring_ref_with_gateway_down(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    ctx = make_ctx(install, tmp_path)
    plan = Rotate().plan(ctx)
    assert "keyring-ref" in plan.summary and OLD not in plan.diff
    result = rotate(ctx)

    new = ctx.shared["gateway_token"]
    assert ctx.shared["old_gateway_token"] == OLD
    assert len(new) == 64 and int(new, 16) >= 0
    entry = keystore.entry_name(install)
    assert keystore.read("moltir", entry) == new
    assert keystore.read("moltir", entry + ":next") is None  # the staging entry is gone
    text = install.config_path.read_text()
    assert new not in text and OLD not in text
    assert "// my gateway" in text and "// keep me" in text  # comments survive
    conf = json5.loads(text)
    assert conf["meta"] == {"lastTouchedVersion": "2026.9.6"} and conf["gateway"]["mode"] == "local"
    assert conf["gateway"]["auth"] == {"mode": "token", "token": {"source": "exec", "provider": "moltir",
                                                                  "id": entry}}
    provider = conf["secrets"]["providers"]["moltir"]
    assert provider["passEnv"][:3] == ["HOME", "PATH", "DBUS_SESSION_BUS_ADDRESS"] and provider["jsonOnly"]
    assert keystore.exec_path_problem(provider["command"]) is None
    assert stat.S_IMODE(install.config_path.stat().st_mode) == 0o600

    assert result.details["new_fingerprint"] == fingerprint(new)
    assert result.details["old_fingerprint"] == fingerprint(OLD)
    assert result.details["applied"] is None and "not running" in result.summary
    assert result.details["boot_check"]["ok"]
    record = ctx.case.restore_section("token")
    assert record["previous"]["token_fingerprint"] == fingerprint(OLD)
    assert record["previous"]["token_kind"] == "plaintext"
    assert record["new_fingerprint"] == fingerprint(new)
    # the old value is evidence: only in the config's pre-image, nowhere else in the case
    assert OLD in (ctx.case.dir / "preimage" / "openclaw.json").read_text()
    everything = all_case_text(ctx.case, skip=("preimage",))
    assert OLD not in everything and new not in everything
    rendered = json.dumps(dict(result.details)) + result.summary + " ".join(result.warnings)
    assert OLD not in rendered and new not in rendered


def test_second_rotation_keeps_the_ref_and_changes_only_the_keyring(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    first = make_ctx(install, tmp_path)
    rotate(first)
    config_after_first = install.config_path.read_bytes()
    second = make_ctx(install, tmp_path / "2")
    result = rotate(second)
    assert second.shared["old_gateway_token"] == first.shared["gateway_token"]
    assert result.details["old_source"] == "keyring (moltir SecretRef)"
    assert install.config_path.read_bytes() == config_after_first
    assert keystore.read("moltir", keystore.entry_name(install)) == second.shared["gateway_token"]


def test_plaintext_on_early_openclaw_keeps_the_keyring_copy_as_record(tmp_path: Path) -> None:
    install = make_install(tmp_path, release="2026.1.29")
    ctx = make_ctx(install, tmp_path)
    result = rotate(ctx)
    new = ctx.shared["gateway_token"]
    conf = json5.loads(install.config_path.read_text())
    assert conf["gateway"]["auth"]["token"] == new and "secrets" not in conf
    assert keystore.read("moltir", keystore.entry_name(install)) == new
    assert result.details["mode"] == "plaintext"
    assert any("does not take a SecretRef" in w and "record" in w for w in result.warnings)
    assert "boot_check" not in result.details


def test_locked_keyring_changes_nothing(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    (Path(os.environ["HOME"]) / "LOCKED").write_text("")
    ctx = make_ctx(install, tmp_path)
    before = install.config_path.read_bytes()
    with pytest.raises(MoltirError) as err:
        Rotate().apply(ctx)
    assert err.value.exit_code == EXIT_ENV and "locked" in err.value.message
    assert install.config_path.read_bytes() == before
    assert ctx.case.restore_section("token") is None
    assert "gateway_token" not in ctx.shared


def test_insecure_backend_needs_the_flag(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    keyring.set_keyring(fakes.PlaintextKeyring())
    before = install.config_path.read_bytes()
    with pytest.raises(MoltirError) as err:
        Rotate().apply(make_ctx(install, tmp_path, {"mode": "plaintext"}))
    assert err.value.exit_code == EXIT_ENV and "--allow-insecure-keyring" in err.value.hint
    assert install.config_path.read_bytes() == before
    result = rotate(make_ctx(install, tmp_path / "2", {"mode": "plaintext"}, allow_insecure_keyring=True))
    assert any("plaintext file" in w for w in result.warnings)


def test_boot_check_refuses_the_switch_when_the_gateway_env_cannot_read_the_keyring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # moltir's keyring file is not where a process with only passEnv (HOME, ...) looks
    monkeypatch.setenv("MOLTIR_TEST_KEYRING_FILE", str(tmp_path / "elsewhere.json"))
    install = make_install(tmp_path)
    ctx = make_ctx(install, tmp_path)
    before = install.config_path.read_bytes()
    with pytest.raises(MoltirError) as err:
        Rotate().apply(ctx)
    assert err.value.exit_code == EXIT_ENV
    assert "NOT_FOUND" in err.value.message and "plaintext" in err.value.hint
    assert "DBUS_SESSION_BUS_ADDRESS" in err.value.hint and "--runbook" in err.value.hint  # actionable
    assert install.config_path.read_bytes() == before
    assert keystore.read("moltir", keystore.entry_name(install)) is None
    assert keystore.read("moltir", keystore.entry_name(install) + ":next") is None
    assert ctx.case.restore_section("token") is None


def test_backups_cannot_bring_the_old_token_back(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    cfg = install.config_path
    (cfg.parent / "openclaw.json.bak").write_text(cfg.read_text())
    (cfg.parent / "openclaw.json.bak.1").write_text(json.dumps({"gateway": {"mode": "local",
                                                                            "auth": {"token": OLD}}}))
    (cfg.parent / "openclaw.json.last-good").write_text("{ not json5 " + OLD)
    (cfg.parent / "openclaw.json.clobbered.2026-11-25T00-00-00Z").write_text(cfg.read_text())
    (cfg.parent / "openclaw.json.moltir-1.tmp").write_text("ignored")
    assert len(config_backups(install)) == 4
    ctx = make_ctx(install, tmp_path)
    result = rotate(ctx)
    actions = {b["file"]: b["action"] for b in result.details["backups"]}
    assert actions == {"openclaw.json.bak": "rewritten", "openclaw.json.bak.1": "rewritten",
                       "openclaw.json.last-good": "removed",
                       "openclaw.json.clobbered.2026-11-25T00-00-00Z": "rewritten"}
    for b in config_backups(install):
        assert OLD not in b.read_text()
        assert json5.loads(b.read_text())["gateway"]["auth"]["token"]["source"] == "exec"
    for name in actions:
        assert OLD in (ctx.case.dir / "preimage" / "backups" / name).read_text()


def test_env_file_token_is_reported_and_removed_with_clean_env(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    env_file = install.state_dir / ".env"
    env_file.write_text(f"FOO=bar\nexport OPENCLAW_GATEWAY_TOKEN='{OLD}'\n")
    result = rotate(make_ctx(install, tmp_path))
    assert any(".env" in w and "--clean-env" in w and fingerprint(OLD) in w for w in result.warnings)
    assert read_env_file(env_file)["OPENCLAW_GATEWAY_TOKEN"] == OLD
    result = rotate(make_ctx(install, tmp_path / "2", clean_env=True))
    assert read_env_file(env_file) == {"FOO": "bar"}
    assert any("removed OPENCLAW_GATEWAY_TOKEN" in w for w in result.warnings)


def test_hooks_token_equal_to_the_gateway_token_is_reported(tmp_path: Path) -> None:
    install = make_install(tmp_path, hooks=OLD)
    result = rotate(make_ctx(install, tmp_path))
    assert any("hooks.token equals the old gateway token" in w for w in result.warnings)
    assert all(OLD not in w for w in result.warnings)


def test_require_running_fails_without_a_gateway(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    with pytest.raises(MoltirError) as err:
        Rotate().apply(make_ctx(install, tmp_path, {"require_running": True}))
    assert err.value.exit_code == EXIT_ENV
    result = Verify().apply(make_ctx(install, tmp_path, action=Verify))
    assert result.status == "skipped" and "not running" in result.summary


# ---- a running (fake) gateway ---------------------------------------------------------------

@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Install, fake_tokengw.TokenGateway]]:
    port = free_port()
    install = make_install(tmp_path, port=port)
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port)
    try:
        yield install, gw
    finally:
        gw.stop()


def test_keyring_ref_route_is_sigusr2_and_the_proof_holds(running: tuple[Install, Any], tmp_path: Path) -> None:
    install, gw = running
    ctx = make_ctx(install, tmp_path, {"timeout_s": 20})
    result = rotate(ctx)
    assert result.details["route"] == "SIGUSR2" and result.details["applied"] is True
    new = ctx.shared["gateway_token"]
    assert gw.events()[-1] == {"event": "resolved", "why": "SIGUSR2", "fp": fingerprint(new)}
    proof = Verify().apply(make_ctx(install, tmp_path, action=Verify, shared=ctx.shared))
    assert proof.status == "done" and proof.details["new_status"] == 400 and proof.details["old_status"] == 401

    # second rotation: the config does not change, only SIGUSR2 makes the gateway re-resolve
    ctx2 = make_ctx(install, tmp_path / "2", {"timeout_s": 20})
    rotate(ctx2)
    assert gw.events()[-1] == {"event": "resolved", "why": "SIGUSR2", "fp": fingerprint(ctx2.shared["gateway_token"])}


def test_plaintext_route_is_the_file_watch(tmp_path: Path) -> None:
    port = free_port()
    install = make_install(tmp_path, release="2026.1.29", port=port)
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port)
    try:
        ctx = make_ctx(install, tmp_path, {"timeout_s": 20})
        result = rotate(ctx)
        assert result.details["route"] == "config file watch" and result.details["applied"] is True
        assert gw.events()[-1]["why"] == "file watch"
        assert all(e["why"] != "SIGUSR2" for e in gw.events())
    finally:
        gw.stop()


def test_a_gateway_that_does_not_reload_is_rolled_back_in_a_drill(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from moltir.actions.token import settle

    monkeypatch.setattr(settle, "SETTLE_S", 0.5)
    port = free_port()
    install = make_install(tmp_path, port=port)
    before = json5.loads(install.config_path.read_text())
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port, frozen=True)
    try:
        ctx = make_ctx(install, tmp_path, {"timeout_s": 2, "on_apply_failure": "rollback"})
        with pytest.raises(MoltirError) as err:
            rotate(ctx)
        assert err.value.exit_code == EXIT_VERIFY
        assert "rolled back" in err.value.message and "accepts the previous token" in err.value.message
        after = json5.loads(install.config_path.read_text())
        assert after["gateway"]["auth"] == before["gateway"]["auth"]
        assert "moltir" not in after.get("secrets", {}).get("providers", {})
        assert keystore.read("moltir", keystore.entry_name(install)) == OLD
        from moltir.openclaw import gateway_http
        assert gateway_http.token_status(port, OLD) == 400
        assert OLD not in err.value.one_line()
    finally:
        gw.stop()


def test_a_gateway_that_does_not_reload_is_left_on_the_new_token_in_contain(tmp_path: Path) -> None:
    port = free_port()
    install = make_install(tmp_path, port=port)
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port, frozen=True)
    try:
        ctx = make_ctx(install, tmp_path, {"timeout_s": 1})
        with pytest.raises(MoltirError) as err:
            rotate(ctx)
        assert err.value.exit_code == EXIT_VERIFY and "restart the gateway" in err.value.hint
        assert keystore.read("moltir", keystore.entry_name(install)) == ctx.shared["gateway_token"]
    finally:
        gw.stop()


def test_verify_fails_when_the_old_token_still_works(running: tuple[Install, Any], tmp_path: Path) -> None:
    install, _ = running
    shared = {"gateway_token": OLD, "old_gateway_token": OLD + "x"}
    ok = Verify().apply(make_ctx(install, tmp_path, action=Verify, shared=shared))
    assert ok.status == "done"  # the gateway accepts OLD: as a "new" token it proves
    shared = {"gateway_token": "never-configured-" + "b" * 40, "old_gateway_token": OLD}
    with pytest.raises(MoltirError) as err:
        Verify().apply(make_ctx(install, tmp_path, {"timeout_s": 1}, action=Verify, shared=shared))
    assert err.value.exit_code == EXIT_VERIFY and "HTTP 401" in err.value.message and "HTTP 400" in err.value.message
    assert ROLLBACK_KEY not in shared


def test_plan_has_no_side_effects_and_warns_about_an_unusable_keyring(tmp_path: Path) -> None:
    import keyring.backends.fail

    install = make_install(tmp_path)
    keyring.set_keyring(keyring.backends.fail.Keyring())
    before = install.config_path.read_bytes()
    plan = Rotate().plan(make_ctx(install, tmp_path, dry_run=True))  # the diff is for --dry-run
    assert any("no keyring backend" in w and "exit 3" in w for w in plan.warnings)
    assert "gateway.auth.token" in {c.target for c in plan.changes}
    assert OLD not in plan.diff and "moltir-secret" in plan.diff
    assert install.config_path.read_bytes() == before
    assert not keystore.helper_wrapper_path(install.env).exists()


def test_a_store_ref_token_is_replaced_and_the_stale_store_entry_reported(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    text = install.config_path.read_text().replace(
        f'"{OLD}"', '{ source: "store", provider: "default", id: "OPENCLAW_GATEWAY_TOKEN" }')
    install.config_path.write_text(text)
    ctx = make_ctx(install, tmp_path)
    result = rotate(ctx)
    assert result.details["old_fingerprint"] is None and "store" in result.details["old_source"]
    assert any("secrets store rm OPENCLAW_GATEWAY_TOKEN" in w for w in result.warnings)
    assert ctx.case.restore_section("token")["previous"]["token_ref"]["source"] == "store"


def test_switching_from_password_auth_is_reported(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    text = install.config_path.read_text().replace('mode: "token"', 'mode: "password"')
    install.config_path.write_text(text.replace(f'token: "{OLD}"', f'password: "{OLD}"'))
    ctx = make_ctx(install, tmp_path, {"mode": "plaintext"})
    result = rotate(ctx)
    assert any("gateway.auth.mode was 'password'" in w for w in result.warnings)
    auth = json5.loads(install.config_path.read_text())["gateway"]["auth"]
    assert auth == {"mode": "token", "token": ctx.shared["gateway_token"]}
    assert ctx.shared["old_gateway_token"] == OLD and result.details["old_source"] == "config (gateway.auth.password)"
    assert OLD in (ctx.case.dir / "preimage" / "openclaw.json").read_text()


def test_a_gateway_that_takes_the_new_token_late_is_rolled_forward(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The reload races the rollback: the gateway serves the new token after the drill gave up on it
    and loses the rollback's trigger. The keyring and config must then hold the NEW token."""
    from moltir.actions.token import settle

    monkeypatch.setattr(settle, "SETTLE_S", 3.0)
    port = free_port()
    install = make_install(tmp_path, port=port)
    rotate(make_ctx(install, tmp_path / "first"))  # on moltir's SecretRef; no gateway yet
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port, lag=1.0)
    try:
        ctx = make_ctx(install, tmp_path, {"timeout_s": 0.2, "on_apply_failure": "rollback"})
        with pytest.raises(MoltirError) as err:
            rotate(ctx)
        assert err.value.exit_code == EXIT_VERIFY and "rolled forward" in err.value.message
        new = ctx.shared["gateway_token"]
        from moltir.openclaw import gateway_http
        assert gateway_http.token_status(port, new) == 400
        assert keystore.read("moltir", keystore.entry_name(install)) == new
    finally:
        gw.stop()


# ---- acceptance findings: failures after the commit, pinned backends, devices, restore's proof ------

def test_a_failure_after_the_keyring_commit_is_rolled_back_in_a_drill(running: tuple[Install, Any], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Any error between the keyring/config commit and the proof (a backup that cannot be rewritten, a
    bug, Ctrl-C) must not leave the keyring on a token the running gateway refuses: a drill rolls back."""
    install, _gw = running
    before = json5.loads(install.config_path.read_text())["gateway"]["auth"]

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk on fire")

    monkeypatch.setattr(Rotate, "_neutralise_backups", boom)
    ctx = make_ctx(install, tmp_path, {"timeout_s": 20, "on_apply_failure": "rollback"})
    Rotate().plan(ctx)
    with pytest.raises(OSError, match="disk on fire"):
        Rotate().apply(ctx)
    assert keystore.read("moltir", keystore.entry_name(install)) == OLD
    assert json5.loads(install.config_path.read_text())["gateway"]["auth"] == before
    from moltir.openclaw import gateway_http
    assert gateway_http.token_status(install.gateway_port(install.read_config()), OLD) == 400
    events = [json.loads(line)["event"] for line in ctx.case.journal_path.read_text().splitlines()]
    assert "token.rolled_back_after_error" in events


def test_a_failure_after_the_commit_keeps_the_new_token_in_contain(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    install = make_install(tmp_path)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise MoltirError("cannot rewrite openclaw.json.bak")

    monkeypatch.setattr(Rotate, "_neutralise_backups", boom)
    ctx = make_ctx(install, tmp_path)
    with pytest.raises(MoltirError):
        Rotate().apply(ctx)
    assert keystore.read("moltir", keystore.entry_name(install)) == ctx.shared["gateway_token"]


def test_the_old_token_is_read_from_the_backend_the_config_pins(tmp_path: Path,
                                                                file_keyring: fakes.FileKeyring) -> None:
    """After a backend switch (or a drill run from another environment), the previous token is where
    the gateway reads it (the pinned backend), not a stale copy in keyring's current choice."""
    from moltir.actions.token import old_token

    install = make_install(tmp_path)
    rotate(make_ctx(install, tmp_path))  # config now pins keyring_fakes.FileKeyring
    entry = keystore.entry_name(install)
    live = keystore.read("moltir", entry)
    config = install.read_config()
    assert keystore.pinned_backend_name(config) == "keyring_fakes.FileKeyring"
    stale = fakes.MemKeyring()
    stale.set_password("moltir", entry, "stale-token-from-another-backend")
    keyring.set_keyring(stale)
    token, source = old_token(install, config, [])
    assert token == live and source == "keyring (moltir SecretRef)"
    assert keystore.configured_token(install) == (live, "keyring")
    # a pinned backend this moltir cannot load: unknown, never the stale copy of the current backend
    config["secrets"]["providers"]["moltir"]["args"] = ["--backend", "no_such_module.Keyring"]
    token, source = old_token(install, config, [])
    assert token is None and "no_such_module.Keyring" in source and "cannot be loaded" in source


def test_early_openclaw_devices_are_never_listed_through_its_cli(tmp_path: Path) -> None:
    """2026.1.x auto-pairs a CLI that connects from loopback: asking its CLI for the device list would
    mint a paired device whose token survives every rotation."""
    from dataclasses import replace

    from moltir.actions.token import list_devices

    marker = tmp_path / "cli-ran"
    cli = tmp_path / "openclaw"
    cli.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{\"paired\": []}}'\n")
    cli.chmod(0o755)
    install = pin(replace(make_install(tmp_path, release="2026.1.29"), binary=cli), "2026.1.29")
    devices, source = list_devices(install, "some-token-value")
    assert devices == [] and "absent" in source
    assert not marker.exists()


def test_rotate_preflight_refuses_an_unusable_keyring_and_touches_nothing(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    before = install.config_path.read_bytes()
    (Path(os.environ["HOME"]) / "LOCKED").write_text("")
    with pytest.raises(MoltirError) as err:
        Rotate().preflight(install, {"mode": "auto"}, RunOptions())
    assert err.value.exit_code == EXIT_ENV and "locked" in err.value.message
    assert install.config_path.read_bytes() == before
    (Path(os.environ["HOME"]) / "LOCKED").unlink()
    keyring.set_keyring(fakes.PlaintextKeyring())
    with pytest.raises(MoltirError) as err:
        Rotate().preflight(install, {"mode": "auto"}, RunOptions())
    assert err.value.exit_code == EXIT_ENV and "--allow-insecure-keyring" in err.value.hint
    Rotate().preflight(install, {"mode": "auto"}, RunOptions(allow_insecure_keyring=True))


def test_restore_proves_a_keyring_held_previous_token_refused(running: tuple[Install, Any], tmp_path: Path) -> None:
    """drill, then contain, then restore: the token contain replaced lived in the keyring (not in the
    config's pre-image); contain keeps it in the keyring as <entry>:previous so restore can prove it
    refused, and restore removes it once it has."""
    install, _gw = running
    rotate(make_ctx(install, tmp_path / "drill", {"timeout_s": 20}))  # the "drill": old now in the keyring
    entry = keystore.entry_name(install)
    drilled = keystore.read("moltir", entry)
    contain = make_ctx(install, tmp_path / "contain", {"timeout_s": 20})
    rotate(contain)
    assert keystore.read("moltir", entry + ":previous") == drilled
    later = make_ctx(install, tmp_path / "contain", action=Verify)  # restore: same case, a new run
    proof = Verify().apply(later)
    assert proof.details["old_status"] == 401 and proof.details["old_fingerprint"] == fingerprint(drilled)
    assert keystore.read("moltir", entry + ":previous") is None


def test_a_second_rotation_in_the_same_case_keeps_the_previous_token_restore_must_prove(
        running: tuple[Install, Any], tmp_path: Path) -> None:
    """A rotation run again in one case (resumed after a crash mid-rotation) must not replace
    <entry>:previous with the first attempt's token: restore proves the case's recorded previous."""
    install, _gw = running
    rotate(make_ctx(install, tmp_path / "drill", {"timeout_s": 20}))
    entry = keystore.entry_name(install)
    drilled = keystore.read("moltir", entry)
    rotate(make_ctx(install, tmp_path / "contain", {"timeout_s": 20}))
    rotate(make_ctx(install, tmp_path / "contain", {"timeout_s": 20}))  # the same case, once more
    assert keystore.read("moltir", entry + ":previous") == drilled
    proof = Verify().apply(make_ctx(install, tmp_path / "contain", action=Verify))
    assert proof.details["old_status"] == 401 and proof.details["old_fingerprint"] == fingerprint(drilled)


def test_ctrl_c_after_the_reload_signal_settles_on_the_token_the_gateway_serves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or SIGTERM) in a drill right after SIGUSR2: the rollback puts the previous token back, but
    the reload already under way lands the NEW token and swallows the rollback's signal. The keyring
    must end up holding the token the gateway serves (rolled forward), never one it refuses."""
    from moltir.actions.token import settle
    from moltir.openclaw import gateway_http

    monkeypatch.setattr(settle, "SETTLE_S", 5.0)
    port = free_port()
    install = make_install(tmp_path, port=port)
    rotate(make_ctx(install, tmp_path / "first"))  # on moltir's SecretRef; no gateway yet
    gw = fake_tokengw.spawn(tmp_path, install.env, config_path=install.config_path, port=port, lag=1.0)
    try:
        real_wait = gateway_http.wait_accepted
        calls: list[int] = []

        def interrupted(*args: Any, **kwargs: Any) -> int:  # Ctrl-C while waiting for the reload, once
            calls.append(1)
            if len(calls) == 1:
                # the fake reloads when it is next asked: the reload resolves the new token now and
                # serves it `lag` s later, losing the rollback's signal meanwhile
                gateway_http.token_status(port, "poke-the-reload")
                raise KeyboardInterrupt
            return real_wait(*args, **kwargs)

        monkeypatch.setattr(gateway_http, "wait_accepted", interrupted)
        ctx = make_ctx(install, tmp_path, {"timeout_s": 20, "on_apply_failure": "rollback"})
        with pytest.raises(KeyboardInterrupt):
            Rotate().apply(ctx)
        held = keystore.read("moltir", keystore.entry_name(install))
        assert held is not None
        assert gateway_http.wait_accepted(port, held, timeout_s=10) == 400
        events = [json.loads(line)["event"] for line in ctx.case.journal_path.read_text().splitlines()]
        assert "token.rolled_back_after_error" in events and "token.rolled_forward" in events
        assert held == ctx.shared["gateway_token"]
    finally:
        gw.stop()


# ---- prepared during the gateway's drain ----------------------------------------------------------

def test_what_prepare_staged_during_the_drain_is_what_apply_commits(tmp_path: Path) -> None:
    """contain: while the gateway drains, prepare() stages the new token and runs the boot check;
    apply() then only commits that token (same fingerprint), and the staging entry is gone."""
    install = make_install(tmp_path)
    ctx = make_ctx(install, tmp_path)
    entry = keystore.entry_name(install)
    undo = Rotate().prepare(ctx)
    assert undo is not None
    staged = keystore.read("moltir", entry + ":next")
    assert staged is not None and keystore.read("moltir", entry) is None   # nothing committed yet
    result = rotate(ctx)
    assert result.details["new_fingerprint"] == fingerprint(staged) and result.details["boot_check"]["ok"]
    assert keystore.read("moltir", entry) == staged and keystore.read("moltir", entry + ":next") is None
    events = [json.loads(line) for line in ctx.case.journal_path.read_text().splitlines()]
    assert next(e for e in events if e["event"] == "token.generated")["prepared"] is True
    undo()                                                                  # taken: nothing to undo
    assert keystore.read("moltir", entry) == staged


def test_a_preparation_no_step_took_is_undone(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    ctx = make_ctx(install, tmp_path)
    before = install.config_path.read_bytes()
    undo = Rotate().prepare(ctx)
    assert undo is not None and keystore.read("moltir", keystore.entry_name(install) + ":next") is not None
    undo()
    assert keystore.read("moltir", keystore.entry_name(install) + ":next") is None
    assert keystore.read("moltir", keystore.entry_name(install)) is None and install.config_path.read_bytes() == before


def test_nothing_is_prepared_for_a_drill_or_a_plaintext_rotation(tmp_path: Path) -> None:
    install = make_install(tmp_path)
    assert Rotate().prepare(make_ctx(install, tmp_path, {"require_running": True})) is None
    early = tmp_path / "early"
    early.mkdir()
    assert Rotate().prepare(make_ctx(make_install(early, release="2026.1.29"), early)) is None
