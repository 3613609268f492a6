"""keystore: backend preflight, store/read-back, the helper wrapper and its boot check."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.backends.null
import pytest

from moltir import keystore
from moltir.errors import EXIT_ENV, MoltirError
from moltir.openclaw import discover
from moltir.redaction import fingerprint

sys.path.insert(0, str(Path(__file__).parent))
import keyring_fakes as fakes


@pytest.fixture
def backend() -> Iterator[fakes.MemKeyring]:
    before = keyring.get_keyring()
    kr = fakes.MemKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


def use(kr: keyring.backend.KeyringBackend) -> None:
    keyring.set_keyring(kr)


@pytest.fixture(autouse=True)
def _restore_backend() -> Iterator[None]:
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


def test_preflight_names_a_usable_backend(backend: fakes.MemKeyring) -> None:
    info = keystore.preflight(allow_insecure=False)
    assert info.name.endswith("keyring_fakes.MemKeyring")
    assert not info.insecure
    assert "MemKeyring" in info.describe()


@pytest.mark.parametrize(("kr", "words"), [
    (keyring.backends.fail.Keyring(), "no keyring backend"),
    (keyring.backends.null.Keyring(), "stores nothing"),
])
def test_preflight_refuses_no_keyring_even_when_insecure_allowed(kr: object, words: str) -> None:
    use(kr)  # type: ignore[arg-type]
    for allow in (False, True):
        with pytest.raises(MoltirError) as err:
            keystore.preflight(allow_insecure=allow)
        assert err.value.exit_code == EXIT_ENV
        assert words in err.value.message
        assert "\n" not in err.value.one_line()


def test_preflight_refuses_plaintext_unless_allowed() -> None:
    use(fakes.PlaintextKeyring())
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert err.value.exit_code == EXIT_ENV
    assert "--allow-insecure-keyring" in err.value.hint
    info = keystore.preflight(allow_insecure=True)
    assert info.insecure and "INSECURE" in info.describe()


@pytest.mark.parametrize(("kr", "words", "fix"), [
    (fakes.LockedKeyring(), "the keyring is locked", "unlock"),
    (fakes.UninitKeyring(), "could not be opened", "unlock"),
    (fakes.NoBackendKeyring(), "no keyring backend", "D-Bus"),
])
def test_preflight_turns_keyring_errors_into_one_line_exit_3(kr: object, words: str, fix: str) -> None:
    use(kr)  # type: ignore[arg-type]
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert err.value.exit_code == EXIT_ENV
    assert words in err.value.message
    assert fix in err.value.hint
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_plaintext_detection() -> None:
    assert keystore.is_plaintext("keyrings.alt.file.PlaintextKeyring")
    assert not keystore.is_plaintext("keyrings.alt.file.EncryptedKeyring")
    assert not keystore.is_plaintext("keyring.backends.SecretService.Keyring")


def test_chainer_with_a_plaintext_member_is_insecure() -> None:
    class ChainerBackend(fakes.MemKeyring):
        backends = (fakes.MemKeyring(), fakes.PlaintextKeyring())

    info = keystore.describe_backend(ChainerBackend())
    assert info.chain and info.insecure


def test_store_reads_back_and_returns_the_fingerprint(backend: fakes.MemKeyring) -> None:
    fp = keystore.store("moltir", "gateway-token:x", "a" * 64)
    assert fp == fingerprint("a" * 64)
    assert backend.entries[("moltir", "gateway-token:x")] == "a" * 64
    assert keystore.read("moltir", "gateway-token:x") == "a" * 64
    assert keystore.read("moltir", "absent") is None


def test_store_detects_a_backend_that_does_not_keep_the_token() -> None:
    use(fakes.ForgetfulKeyring())
    with pytest.raises(MoltirError) as err:
        keystore.store("moltir", "e", "b" * 64)
    assert err.value.exit_code == EXIT_ENV
    assert "b" * 64 not in err.value.one_line()
    assert fingerprint("b" * 64) in err.value.message


def test_store_on_a_locked_keyring_is_exit_3() -> None:
    use(fakes.LockedKeyring())
    with pytest.raises(MoltirError) as err:
        keystore.store("moltir", "e", "c" * 64)
    assert err.value.exit_code == EXIT_ENV


def test_bad_backend_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.core

    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "no.such.Backend")
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert err.value.exit_code == EXIT_ENV
    assert "PYTHON_KEYRING_BACKEND" in err.value.hint


def test_entry_name_is_per_install(tmp_path: Path) -> None:
    a = discover(state_dir=str(tmp_path / "a"), env={"HOME": str(tmp_path), "PATH": ""})
    b = discover(state_dir=str(tmp_path / "b"), env={"HOME": str(tmp_path), "PATH": ""})
    assert keystore.entry_name(a) != keystore.entry_name(b)
    assert keystore.entry_name(a) == f"gateway-token:{a.key}"
    ref = keystore.token_ref(a)
    assert ref == {"source": "exec", "provider": "moltir", "id": keystore.entry_name(a)}


# ---- the helper wrapper -------------------------------------------------------------------

def test_wrapper_passes_openclaws_path_checks(tmp_path: Path) -> None:
    env = {"MOLTIR_HOME": str(tmp_path / "mh")}
    path = keystore.install_helper_wrapper(env)
    assert path == tmp_path / "mh" / "bin" / "moltir-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keystore.exec_path_problem(str(path)) is None
    assert sys.executable in path.read_text()
    # idempotent, and repairs a loosened mode
    os.chmod(path, 0o777)
    assert keystore.exec_path_problem(str(path)) is not None
    keystore.install_helper_wrapper(env)
    assert keystore.exec_path_problem(str(path)) is None


def test_exec_path_problems(tmp_path: Path) -> None:
    f = tmp_path / "helper"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o775)
    assert "writable" in (keystore.exec_path_problem(str(f)) or "")
    f.chmod(0o700)
    assert keystore.exec_path_problem(str(f)) is None
    link = tmp_path / "link"
    link.symlink_to(f)
    assert "symlink" in (keystore.exec_path_problem(str(link)) or "")
    assert "absolute" in (keystore.exec_path_problem("relative/helper") or "")
    assert "not readable" in (keystore.exec_path_problem(str(tmp_path / "missing")) or "")
    assert "regular file" in (keystore.exec_path_problem(str(tmp_path)) or "")


def _fake_keyring_env(tmp_path: Path) -> dict[str, str]:
    """A HOME whose keyringrc.cfg makes a child's keyring load FileKeyring (tests/unit/keyring_fakes.py)."""
    home = tmp_path / "home"
    cfg = home / ".config" / "python_keyring"
    cfg.mkdir(parents=True)
    (cfg / "keyringrc.cfg").write_text(
        f"[backend]\ndefault-keyring=keyring_fakes.FileKeyring\nkeyring-path={Path(__file__).parent}\n")
    return {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def test_boot_check_runs_the_helper_with_only_pass_env(tmp_path: Path) -> None:
    env = _fake_keyring_env(tmp_path)
    home = Path(env["HOME"])
    install = discover(state_dir=str(tmp_path / "state"), env={**env, "MOLTIR_HOME": str(tmp_path / "mh")})
    token = "d" * 64
    entry = keystore.entry_name(install)
    (home / "fake-keyring.json").write_text(json.dumps({f"moltir/{entry}": token}))
    wrapper = str(keystore.install_helper_wrapper({"MOLTIR_HOME": str(tmp_path / "mh")}))
    # a variable outside passEnv must not reach the helper: it would lock the fake keyring
    boot_env = keystore.BootEnv({**env, "MOLTIR_TEST_KEYRING_LOCKED": "1"}, "test env")
    check = keystore.boot_check(install, wrapper, [], expected=token, boot_env=boot_env)
    assert check.ok, check.detail
    assert check.fingerprint == fingerprint(token)
    assert token not in check.detail

    wrong = keystore.boot_check(install, wrapper, [], expected="e" * 64, boot_env=boot_env)
    assert not wrong.ok and "not the expected" in wrong.detail

    (home / "LOCKED").write_text("")
    locked = keystore.boot_check(install, wrapper, [], expected=token, boot_env=boot_env)
    assert not locked.ok
    assert "KeyringLocked" in locked.detail and "rc 1" in locked.detail
    err = keystore.boot_refusal(locked)
    assert err.exit_code == EXIT_ENV and "plaintext" in err.hint


def test_boot_check_refuses_a_helper_openclaw_would_refuse(tmp_path: Path) -> None:
    install = discover(state_dir=str(tmp_path / "state"), env={"HOME": str(tmp_path), "PATH": ""})
    helper = tmp_path / "h"
    helper.write_text("#!/bin/sh\n")
    helper.chmod(0o777)
    check = keystore.boot_check(install, str(helper), [], boot_env=keystore.BootEnv({}, "x"))
    assert not check.ok and "would refuse" in check.detail


def test_gateway_env_falls_back_to_this_shell(tmp_path: Path) -> None:
    install = discover(state_dir=str(tmp_path / "state"),
                       env={"HOME": str(tmp_path), "PATH": "", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"})
    boot = keystore.gateway_env(install, pid=None)
    assert boot.env["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/x" or boot.service_managed
    boot2 = keystore.gateway_env(install, pid=os.getpid())
    assert boot2.source == f"running gateway pid {os.getpid()}"
    assert boot2.env.get("PATH") == os.environ.get("PATH")


def test_doctor_checks_report_without_raising(tmp_path: Path, backend: fakes.MemKeyring) -> None:
    state = tmp_path / "state"
    state.mkdir()
    token = "f" * 64
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"mode": "local", "auth": {"mode": "token",
                                                                                          "token": token}}}))
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    checks = dict((name, (ok, detail)) for name, ok, detail in keystore.doctor_checks(install))
    assert checks["keyring backend"][0]
    assert not checks["gateway token in keyring"][0]
    assert not checks["gateway token source"][0]
    keystore.store("moltir", keystore.entry_name(install), token)
    checks = dict((name, (ok, detail)) for name, ok, detail in keystore.doctor_checks(install))
    assert checks["gateway token source"] == (True, "plaintext in the config; the keyring copy matches")
    assert all(token not in detail for _, detail in checks.values())


def test_configured_token_follows_moltirs_ref(tmp_path: Path, backend: fakes.MemKeyring) -> None:
    state = tmp_path / "state"
    state.mkdir()
    cfg = state / "openclaw.json"
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    cfg.write_text(json.dumps({"gateway": {"auth": {"token": "plain-token-123456"}}}))
    assert keystore.configured_token(install) == ("plain-token-123456", "config")
    cfg.write_text(json.dumps({"gateway": {"auth": {"token": keystore.token_ref(install)}}}))
    assert keystore.configured_token(install) == (None, "keyring entry missing")
    keystore.store("moltir", keystore.entry_name(install), "k" * 64)
    assert keystore.configured_token(install) == ("k" * 64, "keyring")
    cfg.write_text("{ broken")
    assert keystore.configured_token(install) == (None, "unreadable")


def test_a_fail_backend_chosen_by_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTHON_KEYRING_BACKEND=...fail.Keyring is a choice, not a missing D-Bus: the fix is the variable."""
    use(keyring.backends.fail.Keyring())
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert "PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring" in err.value.message
    assert "unset PYTHON_KEYRING_BACKEND" in err.value.hint and "D-Bus" not in err.value.hint
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert "fell back" in err.value.message and "D-Bus" in err.value.hint


def test_a_backend_message_reads_as_one_sentence() -> None:
    use(fakes.LockedKeyring())  # "Failed to unlock the collection!"
    with pytest.raises(MoltirError) as err:
        keystore.preflight(allow_insecure=False)
    assert "collection!." not in err.value.one_line() and "collection. unlock" in err.value.one_line()


def test_doctor_says_how_to_fix_a_helper_that_cannot_read_the_keyring(tmp_path: Path,
                                                                      backend: fakes.MemKeyring) -> None:
    state = tmp_path / "state"
    state.mkdir()
    helper = tmp_path / "bin" / "moltir-secret"
    helper.parent.mkdir(mode=0o700)
    helper.write_text("#!/bin/sh\necho 'moltir-secret: cannot read the keyring (KeyringLocked)' >&2\nexit 1\n")
    helper.chmod(0o700)
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    (state / "openclaw.json").write_text(json.dumps({
        "gateway": {"auth": {"mode": "token", "token": keystore.token_ref(install)}},
        "secrets": {"providers": {"moltir": keystore.provider_config(str(helper), "x.Y")}}}))
    checks = dict((name, (ok, detail)) for name, ok, detail in keystore.doctor_checks(install, pid=None))
    ok, detail = checks["secret helper at gateway start"]
    assert not ok and "KeyringLocked" in detail and "unlock the keyring" in detail


def test_doctor_on_early_openclaw_does_not_promise_a_move_to_the_keyring(tmp_path: Path,
                                                                          backend: fakes.MemKeyring) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"auth": {"token": "t" * 40}}}))
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": ""})
    from tests.unit.releasefix import pin

    early = pin(install, "2026.1.29")
    detail = dict((n, d) for n, _, d in keystore.doctor_checks(early))["gateway token source"]
    assert "moves it to the keyring" not in detail and "record" in detail


def test_boot_preflight_reads_the_entry_in_the_gateway_env_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the up-front boot-safety check (token.rotate's preflight): the helper runs with the passEnv of the
    # running gateway's environment (its pid), reads the entry moltir keeps, and nothing is written
    import subprocess

    env = _fake_keyring_env(tmp_path)
    home = Path(env["HOME"])
    monkeypatch.setenv("MOLTIR_TEST_KEYRING_FILE", str(home / "fake-keyring.json"))
    use(fakes.FileKeyring())
    moltir_home = tmp_path / "mh"
    install = discover(state_dir=str(tmp_path / "state"), env={**env, "MOLTIR_HOME": str(moltir_home)})
    entry = keystore.entry_name(install)
    backend = keystore.describe_backend(keyring.get_keyring()).name

    def gateway(gw_env: dict[str, str]) -> subprocess.Popen[bytes]:
        import psutil
        from tests.harness.net import wait_until

        proc = subprocess.Popen(["sleep", "30"], env=gw_env)
        # until exec, /proc/PID/environ is still this process's environment
        wait_until(lambda: psutil.Process(proc.pid).name() == "sleep", 10, interval=0.01, what="exec of sleep")
        return proc

    same = gateway(env)
    elsewhere_env = _fake_keyring_env(tmp_path / "other")  # a HOME whose keyring holds nothing
    other = gateway(elsewhere_env)
    try:
        first = keystore.boot_preflight(install, backend, same.pid)  # nothing stored yet: the keyring answered
        assert first.ok and "no token stored yet" in first.detail and first.source == f"running gateway pid {same.pid}"
        assert not (home / "fake-keyring.json").exists() and not moltir_home.exists(), "the check wrote something"

        token = "c" * 64
        keystore.store("moltir", entry, token)
        ok = keystore.boot_preflight(install, backend, same.pid)
        assert ok.ok and ok.fingerprint == fingerprint(token) and token not in ok.detail

        with pytest.raises(MoltirError) as err:  # the gateway's environment reaches another keyring
            keystore.boot_preflight(install, backend, other.pid)
        assert err.value.exit_code == EXIT_ENV and "another keyring" in err.value.message
        assert token not in err.value.one_line() and "plaintext" in err.value.hint

        (home / "LOCKED").write_text("")  # locked where the gateway looks (and here)
        with pytest.raises(MoltirError) as err:
            keystore.boot_preflight(install, backend, same.pid)
        assert err.value.exit_code == EXIT_ENV
    finally:
        for p in (same, other):
            p.kill()
            p.wait()


def test_boot_preflight_refuses_when_the_gateway_env_has_no_keyring(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    env = _fake_keyring_env(tmp_path)
    monkeypatch.setenv("MOLTIR_TEST_KEYRING_FILE", str(Path(env["HOME"]) / "fake-keyring.json"))
    use(fakes.FileKeyring())
    install = discover(state_dir=str(tmp_path / "state"), env={**env, "MOLTIR_HOME": str(tmp_path / "mh")})
    # the gateway's HOME has no keyringrc: the pinned backend cannot even load there
    gw = subprocess.Popen(["sleep", "30"], env={"HOME": str(tmp_path / "bare"), "PATH": env["PATH"]})
    try:
        with pytest.raises(MoltirError) as err:
            keystore.boot_preflight(install, keystore.describe_backend(keyring.get_keyring()).name, gw.pid)
    finally:
        gw.kill()
        gw.wait()
    assert err.value.exit_code == EXIT_ENV
    assert f"running gateway pid {gw.pid}" in err.value.message
    assert "the helper failed there (rc 1)" in err.value.message
    assert "\n" not in err.value.one_line()


def test_a_launcher_whose_python_is_gone_is_named_with_the_way_out(tmp_path: Path,
                                                                   backend: fakes.MemKeyring) -> None:
    """The gateway's helper outlives the install: a launcher that execs a removed venv's python is a
    doctor problem naming 'moltir token repin' / 'unpin'; `token unpin` puts the token back into the
    0600 config and removes the provider; `token repin` rewrites the launcher for this moltir."""
    from click.testing import CliRunner

    from moltir.cli import cli

    state = tmp_path / "state"
    state.mkdir()
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "MOLTIR_HOME": str(tmp_path / "mh")}
    install = discover(state_dir=str(state), env=env)
    launcher = keystore.install_helper_wrapper(env, python=str(tmp_path / "removed-venv" / "bin" / "python"))
    cfg = state / "openclaw.json"
    cfg.write_text(json.dumps({
        "gateway": {"mode": "local", "auth": {"mode": "token", "token": keystore.token_ref(install)}},
        "secrets": {"providers": {"moltir": keystore.provider_config(str(launcher), keystore.backend_name(backend))}}}))
    cfg.chmod(0o600)
    token = "t" * 64
    keystore.store("moltir", keystore.entry_name(install), token)
    checks = dict((name, (ok, detail)) for name, ok, detail in keystore.doctor_checks(install, pid=None))
    ok, detail = checks["secret helper launcher"]
    assert not ok and "no longer exists" in detail and "moltir token repin" in detail and "unpin" in detail

    args = ["token", "repin", "--state-dir", str(state)]
    old = dict(os.environ)
    os.environ.update(env)
    try:
        CliRunner().invoke(cli, args)
        assert keystore.launcher_problem(launcher) is None  # now runs this interpreter
        got = CliRunner().invoke(cli, ["token", "unpin", "--yes", "--state-dir", str(state)])
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert got.exit_code == 0, got.output
    data = json.loads(cfg.read_text())
    assert data["gateway"]["auth"]["token"] == token and "moltir" not in data.get("secrets", {}).get("providers", {})
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"
    assert token not in got.output
    assert list((tmp_path / "mh" / "backups").glob("*openclaw.json"))
