"""The harness itself, proved on both real releases: config accepted, token check, transcripts,
real SecretService keyring, and nothing left running after teardown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
from tests.harness import kill_leftovers, processes_for
from tests.harness.clawdbot import ClawdbotHome
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.prereq import missing_prerequisite
from tests.harness.releases import keyring_missing
from tests.harness.secret_service import SecretService, start_secret_service
from tests.harness.transcripts import Transcripts, jsonl_messages, sqlite_events

pytestmark = pytest.mark.integration


def test_config_is_commented_json5_the_release_accepts(openclaw_home: OpenClawHome) -> None:
    text = openclaw_home.config_path.read_text()
    assert "// " in text and "gateway: {" in text            # JSON5 with comments, unquoted keys
    valid, detail = openclaw_home.validate_config()
    assert valid, detail

    cfg = openclaw_home.read_config()
    ch = cfg["channels"]
    assert cfg["gateway"]["auth"] == {"mode": "token", "token": openclaw_home.token}
    assert cfg["gateway"]["port"] == openclaw_home.port and cfg["gateway"]["bind"] == "loopback"
    assert Path(cfg["logging"]["file"]).is_relative_to(openclaw_home.home)
    assert set(ch["telegram"]["accounts"]) == {"ops", "alerts"}
    assert "default" in ch["whatsapp"]["accounts"]
    assert {"discord", "slack", "matrix", "msteams"} <= set(ch)
    assert ch["matrix"]["dm"]["policy"] == "pairing"
    if openclaw_home.release.current:
        assert ch["telegram"]["direct"]["555000111"]["dmPolicy"] == "allowlist"
        assert ch["discord"]["dmPolicy"] == "open" and "policy" not in ch["discord"]["dm"]
        assert ch["telegram"]["apiRoot"] == openclaw_home.telegram.url
    else:
        assert "direct" not in ch["telegram"]
        assert ch["discord"]["dm"]["policy"] == "open" and "dmPolicy" not in ch["discord"]
        assert ch["slack"]["dm"]["policy"] == "pairing"
        assert ch["telegram"]["proxy"] == openclaw_home.telegram.url
        assert cfg["update"]["checkOnStart"] is False
        assert cfg["plugins"]["entries"]["telegram"]["enabled"] is True

    env = openclaw_home.env
    assert "OPENCLAW_GATEWAY_TOKEN" not in env
    assert env["PATH"].split(":")[1] == str(openclaw_home.release.bin_dir)
    for var in ("HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "TMPDIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        assert Path(env[var]).is_relative_to(openclaw_home.root), var


def test_gateway_token_check_stop_and_start(openclaw_home: OpenClawHome, gateway: Gateway) -> None:
    before = openclaw_home.config_path.read_bytes()
    assert gateway.token_status(gateway.token) == 400
    assert gateway.token_status("wrong-" + gateway.token) == 401
    assert gateway.token_status(None) == 401
    assert "--token" not in " ".join(psutil.Process(gateway.pid).cmdline())

    # Telegram runs against the fake (apiRoot on 2026.9.6, CONNECT+TLS on 2026.1.29) ...
    assert "getMe" in openclaw_home.telegram.methods()
    if not openclaw_home.release.current:
        assert openclaw_home.telegram.tunnels > 0
    # ... and nothing proxy-aware tried to leave the machine.
    assert openclaw_home.telegram.refused == []

    pids = {p.pid for p in processes_for(openclaw_home.state_dir)}
    assert gateway.pid in pids and gateway.gateway_pid in pids
    assert gateway.stop() == 0                                # SIGTERM is clean with the fake Telegram
    assert gateway.last_stop_killed == []
    assert processes_for(openclaw_home.state_dir) == []
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)
    assert gateway.token_status(gateway.token) == 0           # port closed

    gateway.start()                                           # the fixture can bring it back
    assert gateway.token_status(gateway.token) == 400
    assert openclaw_home.config_path.read_bytes() == before   # the gateway did not rewrite the file


def test_transcripts_written_by_a_real_agent_turn(openclaw_home: OpenClawHome, transcripts: Transcripts) -> None:
    state = openclaw_home.state_dir
    assert openclaw_home.llm.requests, "the fake model was never called"
    if openclaw_home.release.current:
        assert transcripts.kind == "sqlite"
        assert transcripts.paths == (state / "agents" / "main" / "agent" / "openclaw-agent.sqlite",)
        events = [json.loads(e) for e in sqlite_events(transcripts.paths[0])]
        assert events[0]["type"] == "session"
    else:
        assert transcripts.kind == "jsonl"
        (path,) = transcripts.paths
        assert path.parent == state / "agents" / "main" / "sessions"
        assert (path.parent / "sessions.json").exists()
        events = jsonl_messages(path)
    roles = [e["message"]["role"] for e in events if e.get("type") == "message"]
    assert "user" in roles and "assistant" in roles
    assert transcripts.contains(transcripts.reply)


KEYRING_PROBE = textwrap.dedent("""
    import sys, keyring
    k = keyring.get_keyring()
    print(type(k).__module__ + "." + type(k).__name__)
    try:
        if sys.argv[1] == "set":
            keyring.set_password("moltir-test", "gateway", "s3cret-value")
        print(keyring.get_password("moltir-test", "gateway"))
    except Exception as exc:
        print(type(exc).__module__ + "." + type(exc).__name__)
""")


def _probe(env: dict[str, str], action: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", KEYRING_PROBE, action], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_secret_service_is_the_real_keyring_backend(secret_service: SecretService,
                                                     no_keyring_env: dict[str, str]) -> None:
    env = secret_service.with_keyring(no_keyring_env)
    assert _probe(env, "set") == ["keyring.backends.SecretService.Keyring", "s3cret-value"]
    assert _probe(env, "get") == ["keyring.backends.SecretService.Keyring", "s3cret-value"]

    secret_service.lock()
    assert secret_service.is_locked()
    assert _probe(env, "get") == ["keyring.backends.SecretService.Keyring", "keyring.errors.KeyringLocked"]
    secret_service.unlock()
    assert _probe(env, "get")[1] == "s3cret-value"

    assert _probe(no_keyring_env, "get")[0] == "keyring.backends.fail.Keyring"
    assert _probe(SecretService.no_keyring(env), "get")[0] == "keyring.backends.fail.Keyring"


def test_secret_service_teardown_leaves_no_daemon(tmp_path: Path) -> None:
    reason = keyring_missing()
    if reason:
        missing_prerequisite(reason)
    service = start_secret_service(tmp_path / "ss")
    pids = service.pids
    assert [psutil.Process(p).name() for p in pids] == ["dbus-daemon", "gnome-keyring-daemon"]
    service.stop()
    assert service.leftovers() == []
    assert not any(psutil.pid_exists(p) for p in pids)        # reaped: our children, no zombies


def test_kill_leftovers_finds_processes_by_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "OPENCLAW_STATE_DIR": str(state)}
    # A detached parent with a child in its own session, like 2026.9.6's spawn broker.
    code = ("import subprocess, sys, time;"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], start_new_session=True);"
            "time.sleep(300)")
    parent = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        from tests.harness.net import wait_until

        wait_until(lambda: len(processes_for(state)) == 2, 30, what="two processes of the fake install")
        other = tmp_path / "other" / ".openclaw"
        assert processes_for(other) == []
        assert len(kill_leftovers(state)) == 2
        assert processes_for(state) == []
    finally:
        parent.kill()
        parent.wait()


def test_clawdbot_home_layout(clawdbot_home: ClawdbotHome) -> None:
    from moltir.openclaw import discover

    install = discover(env=clawdbot_home.env)
    assert install.product == "clawdbot"
    assert install.state_dir == clawdbot_home.state_dir
    assert install.config_path == clawdbot_home.config_path.resolve()
    cfg = install.read_config()
    for channel in ("discord", "slack", "googlechat"):
        assert "policy" in cfg["channels"][channel]["dm"] and "dmPolicy" not in cfg["channels"][channel]
    assert cfg["gateway"]["auth"]["token"] == clawdbot_home.token
    assert jsonl_messages(clawdbot_home.transcript)[0]["type"] == "session"
    assert (clawdbot_home.state_dir / "agents" / "main" / "sessions" / "sessions.json").exists()
