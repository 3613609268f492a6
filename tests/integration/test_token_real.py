"""token.rotate / token.verify / drills against the REAL gateway and the REAL Secret Service.

Both releases (the ``openclaw_home`` fixture is parametrized): 2026.9.6 reads the token from the
keyring through moltir's exec SecretRef (SIGUSR2 applies it); 2026.1.29 has no SecretRefs, so the
token goes into the 0600 config (its file watcher applies it) and the keyring keeps the record.

While moltir runs, a thread records the argv of every descendant of moltir and of the gateway
(the secret helper is the gateway's child): no token may ever appear there, nor in moltir's
console output, journals, case files (the config pre-image excepted: it is the evidence), or the
drill history.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import wait_until
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService

from moltir.openclaw import discover
from moltir.redaction import fingerprint

MOLTIR = [sys.executable, "-m", "moltir"]


class ArgvScanner(threading.Thread):
    """Collect the argv of every process under ``roots`` until stopped (a psutil poll, ~20 ms)."""

    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.seen: set[tuple[str, ...]] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for root in self.roots:
                try:
                    proc = psutil.Process(root)
                    procs = [proc, *proc.children(recursive=True)]
                except psutil.Error:
                    continue
                for p in procs:
                    try:
                        self.seen.add(tuple(p.cmdline()))
                    except psutil.Error:
                        continue
            self.done.wait(0.02)

    def stop(self) -> set[tuple[str, ...]]:
        self.done.set()
        self.join(timeout=10)
        return self.seen


def run_moltir(args: list[str], env: dict[str, str], roots: list[int], *,
               timeout: float = 600) -> tuple[subprocess.CompletedProcess[str], set[tuple[str, ...]]]:
    proc = subprocess.Popen([*MOLTIR, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    scanner = ArgvScanner([proc.pid, *roots])
    scanner.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seen = scanner.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def keyring_value(service: SecretService, entry: str) -> str | None:
    """Read the real Secret Service the way moltir does, on the test's private bus."""
    code = ("import keyring.backends.SecretService as s, sys; "
            "v = s.Keyring().get_password('moltir', sys.argv[1]); sys.stdout.write(v or '')")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(service.keyring_home), **service.env}
    out = subprocess.run([sys.executable, "-c", code, entry], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return out or None


def moltir_files(env: dict[str, str]) -> list[Path]:
    root = Path(env["XDG_STATE_HOME"]) / "moltir"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_no_leak(tokens: list[str], *, outputs: list[str], argvs: set[tuple[str, ...]], env: dict[str, str],
                   allowed: tuple[str, ...] = ("preimage",)) -> None:
    for tok in tokens:
        fp = fingerprint(tok)
        for text in outputs:
            assert tok not in text, f"token {fp} in moltir's console output"
        for argv in argvs:
            assert all(tok not in a for a in argv), f"token {fp} on a child's command line: {argv[:3]}"
        for path in moltir_files(env):
            if any(part in allowed for part in path.parts):
                continue
            assert tok not in path.read_text(errors="replace"), f"token {fp} in {path}"


@pytest.fixture
def keyring_gateway(openclaw_home: OpenClawHome, secret_service: SecretService) -> Iterator[Gateway]:
    """The real gateway, started in an environment that reaches the Secret Service (its session bus)."""
    openclaw_home.env.update(secret_service.env)
    gw = Gateway(openclaw_home)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()
        gw.assert_stopped()


def _entry(home: OpenClawHome) -> str:
    return f"gateway-token:{discover(env=home.env).key}"


def test_drill_twice_on_the_running_gateway_then_restart(openclaw_home: OpenClawHome, secret_service: SecretService,
                                                         keyring_gateway: Gateway) -> None:
    home, gw = openclaw_home, keyring_gateway
    env = dict(home.env)
    original = home.token
    current = home.release.current
    if current:
        # an OpenClaw-written config (meta block) and a .bak holding the original token, as in real life
        rc = home.run_openclaw("config", "set", "update.auto.enabled", "false", timeout=120)
        assert rc.returncode == 0, rc.stdout + rc.stderr
        bak = home.config_path.with_name("openclaw.json.bak")
        assert bak.exists() and original in bak.read_text()
        assert "meta" in home.read_config()
    roots = [gw.gateway_pid]

    first, seen1 = run_moltir(["drill", "--yes", "--json"], env, roots)
    assert first.returncode == 0, first.stdout + first.stderr
    t1 = keyring_value(secret_service, _entry(home))
    assert t1 and t1 != original
    second, seen2 = run_moltir(["drill", "--yes", "--json"], env, roots)
    assert second.returncode == 0, second.stdout + second.stderr
    t2 = keyring_value(secret_service, _entry(home))
    assert t2 and t2 not in (t1, original)

    report = moltir_json(second.stdout)
    rotate = next(s for s in report["steps"] if s["id"] == "rotate-token")
    assert rotate["details"]["mode"] == ("keyring-ref" if current else "plaintext")
    assert rotate["details"]["route"] == ("SIGUSR2" if current else "config file watch")

    # the live proof, independent of moltir's own
    assert gw.token_status(t2) == 400
    assert gw.token_status(t1) == 401 and gw.token_status(original) == 401

    if not current:
        # 2026.1.29 auto-pairs a CLI that connects from loopback: moltir must not mint a paired device
        # (whose token would survive every rotation) by asking its CLI for the device list
        paired = home.state_dir / "devices" / "paired.json"
        assert not paired.exists() or not json.loads(paired.read_text()), "a drill paired a device"
        for rotate_step in (moltir_json(r.stdout)["steps"][0] for r in (first, second)):
            assert rotate_step["details"]["devices"]["paired"] == []

    history, _ = run_moltir(["drill", "history", "--json"], env, [])
    records = moltir_json(history.stdout)["drills"]
    assert [r["outcome"] for r in records] == ["ok", "ok"]
    assert records[0]["fingerprints"] == {"new": fingerprint(t1), "old": fingerprint(original)}
    assert records[1]["fingerprints"] == {"new": fingerprint(t2), "old": fingerprint(t1)}
    assert all(r["proof"] == {"new_status": 400, "old_status": 401} for r in records)

    text = home.config_path.read_text()
    if current:
        assert all(t not in text for t in (original, t1, t2)), "a token value is still in the config"
        auth = home.read_config()["gateway"]["auth"]
        assert auth["token"] == {"source": "exec", "provider": "moltir", "id": _entry(home)}
        assert "meta" in home.read_config(), "moltir dropped OpenClaw's meta block"
    else:
        assert home.read_config()["gateway"]["auth"]["token"] == t2
    for b in home.config_path.parent.glob("openclaw.json.*"):
        if b.suffix != ".tmp":
            assert original not in b.read_text(errors="replace"), f"{b.name} still holds the original token"

    doctor, seen3 = run_moltir(["doctor", "--json"], env, roots)
    checks = {c["check"]: c for c in moltir_json(doctor.stdout)["checks"]}
    mine = ["keyring backend", "gateway token in keyring", "gateway token source"]
    if current:
        mine += ["secret helper", "secret helper at gateway start"]
        assert "running gateway pid" in checks["secret helper at gateway start"]["detail"]
    for name in mine:
        assert checks[name]["ok"], checks[name]

    assert_no_leak([original, t1, t2], outputs=[first.stdout, first.stderr, second.stdout, second.stderr,
                                                history.stdout, doctor.stdout, doctor.stderr],
                   argvs=seen1 | seen2 | seen3, env=env)
    if current:
        assert any("devices" in argv for argv in seen1), "the argv scan saw no openclaw child at all"

    # restarted on the rotated config, the gateway takes the keyring's token and refuses the old ones
    home.token = t2
    gw.restart()
    assert gw.token_status(t2) == 400
    assert gw.token_status(t1) == 401 and gw.token_status(original) == 401

    if current:
        # OpenClaw's clobber guard: a config that lost its meta block is replaced by .bak at start.
        # moltir rewrote .bak, so even that path cannot bring the original token back.
        gw.stop()
        data = home.read_config()
        data.pop("meta")
        home.config_path.write_text(json.dumps(data, indent=2))
        gw.start()
        wait_until(lambda: "auto-restored" in gw.log_tail(400), 30, what="the clobber guard's restore")
        assert gw.token_status(t2) == 400
        assert gw.token_status(original) == 401 and gw.token_status(t1) == 401


def test_unusable_keyring_changes_nothing(openclaw_home: OpenClawHome, secret_service: SecretService,
                                          keyring_gateway: Gateway) -> None:
    home, gw = openclaw_home, keyring_gateway
    before = home.config_path.read_bytes()
    env = dict(home.env)

    secret_service.lock()
    try:
        locked, _ = run_moltir(["drill", "--yes"], env, [gw.gateway_pid])
    finally:
        secret_service.unlock()
    assert locked.returncode == 3, locked.stdout + locked.stderr
    assert "keyring is locked" in locked.stderr or "could not be opened" in locked.stderr
    assert "Traceback" not in locked.stdout + locked.stderr
    assert any("unlock" in line for line in locked.stderr.splitlines() if "keyring" in line)
    assert home.config_path.read_bytes() == before
    assert gw.token_status(home.token) == 400

    absent_env = SecretService.no_keyring(env)
    absent, _ = run_moltir(["drill", "--yes"], absent_env, [gw.gateway_pid])
    assert absent.returncode == 3, absent.stdout + absent.stderr
    assert "no keyring backend" in absent.stderr and "D-Bus" in absent.stderr
    assert "Traceback" not in absent.stdout + absent.stderr
    assert home.config_path.read_bytes() == before
    assert gw.token_status(home.token) == 400
    assert keyring_value(secret_service, _entry(home)) is None

    history, _ = run_moltir(["drill", "history", "--json"], env, [])
    records: list[dict[str, Any]] = moltir_json(history.stdout)["drills"]
    assert [r["outcome"] for r in records] == ["failed", "failed"]
    assert all(r["exit_code"] == 3 for r in records)


def test_rotation_with_the_gateway_down_then_start(openclaw_home: OpenClawHome, secret_service: SecretService,
                                                   tmp_path: Path) -> None:
    """The contain case: the gateway is stopped first; it reads the new token when it starts."""
    home = openclaw_home
    home.env.update(secret_service.env)
    env = dict(home.env)
    original = home.token
    runbook = tmp_path / "rotate.json5"
    runbook.write_text('{ name: "contain", steps: [ { id: "rotate-token", action: "token.rotate" },'
                       ' { id: "prove", action: "token.verify" } ] }')
    result, seen = run_moltir(["contain", "--yes", "--json", "--runbook", str(runbook)], env, [])
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {s["id"]: s for s in moltir_json(result.stdout)["steps"]}
    assert steps["prove"]["status"] == "skipped" and "not running" in steps["prove"]["summary"]
    assert "not running" in steps["rotate-token"]["summary"]
    new = keyring_value(secret_service, _entry(home))
    assert new and new != original
    assert_no_leak([original, new], outputs=[result.stdout, result.stderr], argvs=seen, env=env)
    if home.release.current:
        assert steps["rotate-token"]["details"]["boot_check"]["ok"] is True
        assert new not in home.config_path.read_text() and original not in home.config_path.read_text()
    home.token = new
    gw = Gateway(home)
    gw.start()
    try:
        assert gw.token_status(new) == 400 and gw.token_status(original) == 401
    finally:
        gw.stop()
        gw.assert_stopped()


# Only 2026.1.29 auto-pairs CLI clients on loopback; 2026.9.6 does not, so only 2026.1.29 runs this.
@pytest.mark.parametrize("openclaw_release", ["2026.1.29"], indirect=True, ids=["oc2026.1.29"])
def test_paired_devices_survive_rotation_until_revoked(openclaw_release: Any, request: pytest.FixtureRequest,
                                                       tmp_path: Path) -> None:
    """2026.1.29: a CLI that paired itself keeps working with the OLD token after a rotation
    (openclaw-old-run.md §5); the drill lists it, and --revoke-devices ends that."""
    assert not openclaw_release.current
    home: OpenClawHome = request.getfixturevalue("openclaw_home")
    gw: Gateway = request.getfixturevalue("keyring_gateway")
    original = home.token
    client = tmp_path / "client-state"
    client.mkdir(mode=0o700)
    (client / "openclaw.json").write_text(json.dumps({"logging": {"file": str(client / "client.log")}}))
    client_env = {**home.env, "OPENCLAW_STATE_DIR": str(client), "OPENCLAW_CONFIG_PATH": str(client / "openclaw.json")}

    def health_with(token: str) -> int:
        env = {**client_env, "OPENCLAW_GATEWAY_TOKEN": token}
        return home.run_openclaw("gateway", "call", "health", "--url", f"ws://127.0.0.1:{gw.port}", "--json",
                                 env=env, timeout=120).returncode

    assert health_with(original) == 0  # pairs the client silently
    env = dict(home.env)
    first, _ = run_moltir(["drill", "--yes", "--json"], env, [gw.gateway_pid])
    assert first.returncode == 0, first.stdout + first.stderr
    rotate = next(s for s in moltir_json(first.stdout)["steps"] if s["id"] == "rotate-token")
    paired = rotate["details"]["devices"]["paired"]
    assert len([d for d in paired if d["active_roles"]]) >= 1
    assert any("paired device" in w and "--revoke-devices" in w for w in rotate["warnings"])
    assert gw.token_status(original) == 401          # the shared token is rotated...
    assert health_with(original) == 0                # ...but the paired device still gets in

    second, seen = run_moltir(["drill", "--yes", "--json", "--revoke-devices"], env, [gw.gateway_pid])
    assert second.returncode == 0, second.stdout + second.stderr
    rotate = next(s for s in moltir_json(second.stdout)["steps"] if s["id"] == "rotate-token")
    revoked = rotate["details"]["devices"]["revoked"]
    assert revoked and all(r["revoked"] for r in revoked), revoked
    assert health_with(original) != 0                # revoked: the old credential is dead everywhere
    paired_file = json.loads((home.state_dir / "devices" / "paired.json").read_text())
    active = [d for d in paired_file.values()
              if any(not t.get("revokedAtMs") for t in (d.get("tokens") or {}).values())]
    assert not active, f"devices still holding a live token: {[d.get('clientId') for d in active]}"
    t2 = keyring_value(request.getfixturevalue("secret_service"), _entry(home))
    assert t2 is not None
    assert_no_leak([original, t2], outputs=[second.stdout, second.stderr], argvs=seen, env=env)


def test_a_failed_drill_leaves_the_gateway_on_a_working_token(openclaw_home: OpenClawHome,
                                                              secret_service: SecretService,
                                                              keyring_gateway: Gateway, tmp_path: Path) -> None:
    """A drill whose gateway does not take the new token in time (here: a 50 ms budget) puts the
    previous token back, exits non-zero, and the gateway ends up accepting the previous token."""
    home, gw = openclaw_home, keyring_gateway
    original = home.token
    runbook = tmp_path / "impatient-drill.json5"
    runbook.write_text('{ name: "drill", steps: [ { id: "rotate-token", action: "token.rotate",'
                       ' with: { require_running: true, on_apply_failure: "rollback", timeout_s: 0.05 } } ] }')
    env = dict(home.env)
    result, seen = run_moltir(["drill", "--yes", "--json", "--runbook", str(runbook)], env, [gw.gateway_pid])
    assert result.returncode == 5, result.stdout + result.stderr
    step = moltir_json(result.stdout)["steps"][0]
    held = keyring_value(secret_service, _entry(home))
    assert held is not None
    # never locked out: whichever way it settled, the token on record is the one the gateway takes
    if "rolled back" in step["error"]:
        assert held == original
        assert home.read_config()["gateway"]["auth"]["token"] == original
    else:
        assert "rolled forward" in step["error"], step["error"]
        assert held != original
    wait_until(lambda: gw.token_status(held) == 400, 90, interval=0.5, what="the token on record accepted")
    if held != original:
        assert gw.token_status(original) == 401
    assert_no_leak([original, held], outputs=[result.stdout, result.stderr], argvs=seen, env=env)
    history, _ = run_moltir(["drill", "history", "--json"], env, [])
    (record,) = moltir_json(history.stdout)["drills"]
    assert record["outcome"] == "failed" and record["exit_code"] == 5


def test_contain_with_a_locked_keyring_changes_nothing(openclaw_home: OpenClawHome, secret_service: SecretService,
                                                       keyring_gateway: Gateway) -> None:
    """contain stops the gateway and edits the config before it rotates the token: with the keyring locked
    it is refused up front (exit 3, one line), the gateway still serves, the config and keyring are
    untouched and no case is opened. Unlocked, the same command then contains."""
    home, gw = openclaw_home, keyring_gateway
    env = dict(home.env)
    before = home.config_path.read_bytes()
    pid = gw.gateway_pid
    secret_service.lock()
    try:
        locked, seen = run_moltir(["contain", "--yes", "--reason", "locked keyring"], env, [pid])
        assert secret_service.is_locked()
    finally:
        secret_service.unlock()
    assert locked.returncode == 3, locked.stdout + locked.stderr
    errors = [ln for ln in locked.stderr.splitlines() if ln.startswith("moltir:")]
    assert len(errors) == 1 and "keyring is locked" in errors[0] and "nothing was changed" in errors[0], locked.stderr
    assert "unlock" in errors[0] and "Traceback" not in locked.stdout + locked.stderr
    assert not [ln for ln in locked.stderr.splitlines() if ln.startswith(("→", "✓", "✗"))], "a step ran"
    assert gw.gateway_pid == pid and gw.token_status(home.token) == 400
    assert home.config_path.read_bytes() == before
    assert keyring_value(secret_service, _entry(home)) is None
    cases = Path(env["XDG_STATE_HOME"]) / "moltir" / "cases"
    assert not cases.exists() or not any(cases.iterdir())
    assert_no_leak([home.token], outputs=[locked.stdout, locked.stderr], argvs=seen, env=env)


# Only 2026.9.6 reads the token from the keyring at start (exec SecretRef); 2026.1.29 reads the config.
@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_drill_contain_restore_proves_the_keyring_held_token_refused(openclaw_release: Any,
                                                                      request: pytest.FixtureRequest,
                                                                      tmp_path: Path) -> None:
    """drill (the token moves to the keyring), contain (the gateway is stopped, the token rotated again),
    then restore: with the keyring locked, restore is refused before it changes anything (the gateway
    could not read its token at start); unlocked, the gateway comes back on the NEW token and restore
    proves the drilled token (which the config's pre-image does not hold) refused."""
    home: OpenClawHome = request.getfixturevalue("openclaw_home")
    ss: SecretService = request.getfixturevalue("secret_service")
    gw: Gateway = request.getfixturevalue("keyring_gateway")
    env = dict(home.env)
    contain_rb = tmp_path / "contain.json5"
    contain_rb.write_text('{ name: "contain", steps: [ { id: "stop-gateway", action: "gateway.stop" },'
                          ' { id: "disable-dms", action: "dm_policy.set" },'
                          ' { id: "rotate-token", action: "token.rotate" } ] }')
    restore_rb = tmp_path / "restore.json5"
    restore_rb.write_text('{ name: "restore", steps: [ { id: "restore-dms", action: "dm_policy.restore" },'
                          ' { id: "start-gateway", action: "gateway.start" },'
                          ' { id: "verify-token", action: "token.verify" } ] }')

    drill, seen1 = run_moltir(["drill", "--yes"], env, [gw.gateway_pid])
    assert drill.returncode == 0, drill.stdout + drill.stderr
    drilled = keyring_value(ss, _entry(home))
    contain, seen2 = run_moltir(["contain", "--yes", "--runbook", str(contain_rb)], env, [gw.gateway_pid])
    assert contain.returncode == 0, contain.stdout + contain.stderr
    new = keyring_value(ss, _entry(home))
    assert drilled and new and new != drilled and not gw.running
    contained = home.config_path.read_bytes()

    ss.lock()
    try:
        locked, seen3 = run_moltir(["restore", "--yes", "--runbook", str(restore_rb)], env, [])
    finally:
        ss.unlock()
    assert locked.returncode == 3, locked.stdout + locked.stderr
    errors = [ln for ln in locked.stderr.splitlines() if ln.startswith("moltir:")]
    assert len(errors) == 1 and "secret helper cannot read it" in errors[0] and "unlock" in errors[0], locked.stderr
    assert home.config_path.read_bytes() == contained, "restore changed the config before it was refused"

    restored, seen4 = run_moltir(["restore", "--yes", "--json", "--runbook", str(restore_rb),
                                  *accept_open_dms(home.release.id)], env, [])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    proof = next(s for s in moltir_json(restored.stdout)["steps"] if s["id"] == "verify-token")["details"]
    assert proof["new_fingerprint"] == fingerprint(new)
    assert proof["old_fingerprint"] == fingerprint(drilled) and proof["old_status"] == 401
    assert gw.token_status(new) == 400 and gw.token_status(drilled) == 401 and gw.token_status(home.token) == 401
    assert keyring_value(ss, _entry(home) + ":previous") is None, "the kept previous token outlived its proof"
    assert_no_leak([home.token, drilled, new], outputs=[drill.stdout, drill.stderr, contain.stdout, contain.stderr,
                                                       locked.stdout, locked.stderr, restored.stdout, restored.stderr],
                   argvs=seen1 | seen2 | seen3 | seen4, env=env)


# Only 2026.9.6 reads the token from the keyring through the helper; 2026.1.29 has no boot check.
@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_a_drill_the_gateways_environment_cannot_serve_is_refused_up_front(
        openclaw_release: Any, request: pytest.FixtureRequest) -> None:
    """The gateway runs without the keyring's D-Bus session (moltir has it): the drill is refused by the
    boot-safety check before any case opens -- one stderr line, exit 3, like the other refusals -- the
    gateway keeps its token, the keyring holds nothing new, and the drill history records the refusal."""
    home: OpenClawHome = request.getfixturevalue("openclaw_home")
    ss: SecretService = request.getfixturevalue("secret_service")
    gw = Gateway(home)  # started with home.env: no DBUS_SESSION_BUS_ADDRESS
    gw.start()
    try:
        env = {**home.env, **ss.env}
        before = home.config_path.read_bytes()
        refused, seen = run_moltir(["drill", "--yes"], env, [gw.gateway_pid])
        assert refused.returncode == 3, refused.stdout + refused.stderr
        errors = [ln for ln in refused.stderr.splitlines() if not ln.startswith("warning:")]
        assert len(errors) == 1 and errors[0].startswith("moltir: the gateway could not read its token"), refused.stderr
        assert "DBUS_SESSION_BUS_ADDRESS" in errors[0] and "nothing was changed" in errors[0]
        assert refused.stdout == "" and "Traceback" not in refused.stderr
        cases = Path(env["XDG_STATE_HOME"]) / "moltir" / "cases"
        assert not cases.exists() or not any(cases.iterdir()), "a case was opened"
        assert keyring_value(ss, _entry(home)) is None and keyring_value(ss, _entry(home) + ":next") is None
        assert home.config_path.read_bytes() == before and gw.token_status(home.token) == 400
        history = subprocess.run([*MOLTIR, "drill", "history", "--json"], env=env, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert history.returncode == 0 and "could not read its token" in history.stdout
        as_json, seen_json = run_moltir(["drill", "--yes", "--json"], env, [gw.gateway_pid])
        assert as_json.returncode == 3 and moltir_json(as_json.stdout)["exit_code"] == 3
        assert_no_leak([home.token], outputs=[refused.stdout, refused.stderr, as_json.stdout, as_json.stderr],
                       argvs=seen | seen_json, env=env)
    finally:
        gw.stop()
        gw.assert_stopped()
