"""The harness on the matrix releases (2026.2.25, 2026.5.28, 2026.7.35, 2026.8.2): each one's own
config is accepted (and the wrong DM key shape is not), its real gateway starts, answers the token
check, polls the fake Telegram with the expected bots, runs one agent turn through the fake model
into the right transcript store, and stops clean. The facts moltir relies on (process title, lock
location, restart signal, what SIGUSR2 does) are pinned here from ``releases.FACTS``.

The conftest's ``openclaw_home`` / ``gateway`` / ``transcripts`` fixtures are reused: only
``openclaw_release`` is overridden to run over ``MATRIX_IDS``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import psutil
import pytest
from tests.harness.configs import TG_ALERTS_TOKEN, TG_DEFAULT_TOKEN, TG_OPS_TOKEN, config_matrix, config_text
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome, global_lock_files
from tests.harness.net import port_is_open, wait_until
from tests.harness.prereq import missing_prerequisite
from tests.harness.procs import processes_for
from tests.harness.releases import MATRIX_IDS, Release, release
from tests.harness.tls import openssl_available
from tests.harness.transcripts import Transcripts, jsonl_messages, sqlite_events

pytestmark = pytest.mark.integration


@pytest.fixture(params=MATRIX_IDS, ids=[f"oc{r}" for r in MATRIX_IDS])
def openclaw_release(request: pytest.FixtureRequest) -> Release:
    rel = release(request.param)
    reason = rel.missing()
    if reason:
        missing_prerequisite(reason)
    if not rel.facts.api_root and not openssl_available():
        missing_prerequisite(f"openssl CLI not found (needed for the fake Telegram's TLS on {rel.id})")
    return rel


def _bot(token: str) -> str:
    return token.split(":", 1)[0]


def test_matrix_config_is_the_releases_own_shape_and_accepted(openclaw_home: OpenClawHome) -> None:
    h, f = openclaw_home, openclaw_home.release.facts
    text = h.config_path.read_text()
    assert text == config_text(h.release.id, h.config_params)
    assert "// " in text and "gateway: {" in text            # JSON5 with comments, unquoted keys
    valid, detail = h.validate_config()
    assert valid, detail

    cfg = h.read_config()
    ch = cfg["channels"]
    assert cfg["gateway"]["auth"] == {"mode": "token", "token": h.token}
    tg = ch["telegram"]
    assert tg["botToken"] == TG_DEFAULT_TOKEN
    assert {k: a["botToken"] for k, a in tg["accounts"].items()} == {"ops": TG_OPS_TOKEN, "alerts": TG_ALERTS_TOKEN}
    assert [k for k, a in tg["accounts"].items() if a["dmPolicy"] == "open"] == ["alerts"]
    if f.api_root:
        assert tg["apiRoot"] == h.telegram.url and "proxy" not in tg
    else:
        assert tg["proxy"] == h.telegram.url and "apiRoot" not in tg and h.ca is not None
        assert h.env["NODE_EXTRA_CA_CERTS"] == str(h.ca.ca_cert)
    assert ("direct" in tg) == f.telegram_direct
    if f.telegram_direct:
        assert tg["direct"]["555000111"]["dmPolicy"] == "allowlist"

    assert f.discord_slack_dm_policy
    assert ch["discord"]["dmPolicy"] == "open" and ch["slack"]["dmPolicy"] == "pairing"
    community = ch["discord"]["accounts"]["community"]
    assert (community.get("dm", {}).get("policy") == "pairing") == f.discord_slack_nested_dm
    assert (community.get("dmPolicy") == "pairing") == (not f.discord_slack_nested_dm)
    gc = ch["googlechat"]
    if f.googlechat_dm_key == "dm.policy":
        assert gc["dm"]["policy"] == "pairing" and "dmPolicy" not in gc
        assert gc["accounts"]["workspace"]["dm"]["policy"] == "allowlist"
    else:
        assert gc["dmPolicy"] == "pairing" and "dm" not in gc
        assert gc["accounts"]["workspace"]["dmPolicy"] == "allowlist"

    entries = cfg["plugins"]["entries"]
    off = {"whatsapp", "discord", "slack", "matrix", "msteams", "googlechat"}
    assert {k for k, v in entries.items() if v == {"enabled": False}} == off
    assert ("telegram" in entries) == (not f.channel_plugins_external)
    assert cfg["models"].get("catalogRefresh") == ({"enabled": False} if f.sqlite_state else None)

    # The check can fail: the other Google Chat DM key shape is rejected by this release.
    other = "dmPolicy" if f.googlechat_dm_key == "dm.policy" else "dm.policy"
    h.config_path.write_text(config_matrix(h.release.id, h.config_params,
                                           dataclasses.replace(f, googlechat_dm_key=other)))
    valid, detail = h.validate_config()
    assert not valid, f"{h.release.id} accepted channels.googlechat.{other}: {detail}"
    assert "googlechat" in detail or "dmPolicy" in detail or "policy" in detail, detail
    h.config_path.write_text(text)


def test_matrix_gateway_token_telegram_agent_turn_and_stop(openclaw_home: OpenClawHome, gateway: Gateway,
                                                           transcripts: Transcripts) -> None:
    h, f = openclaw_home, openclaw_home.release.facts
    assert gateway.token_status(gateway.token) == 400
    assert gateway.token_status("wrong-" + gateway.token) == 401
    assert gateway.token_status(None) == 401

    # Telegram polls the fake with the expected bots (through CONNECT+TLS where no apiRoot) ...
    expected = {_bot(TG_OPS_TOKEN), _bot(TG_ALERTS_TOKEN)}
    if f.telegram_root_account:
        expected.add(_bot(TG_DEFAULT_TOKEN))
    wait_until(lambda: {bot for bot, method in h.telegram.calls if method == "getUpdates"} >= expected, 60,
               what=f"getUpdates from bots {sorted(expected)}")
    assert {bot for bot, method in h.telegram.calls if method == "getMe"} == expected
    assert (h.telegram.tunnels > 0) == (not f.api_root)
    # ... and nothing proxy-aware (npm, plugin repair, other channels) tried to leave the machine,
    # nor anything that resolves names itself (it would log getaddrinfo ENOTFOUND here).
    assert h.telegram.refused == []
    log = h.log_file.read_text(errors="replace") + gateway.log_path.read_text(errors="replace")
    assert "getaddrinfo" not in log and "npm error" not in log

    # The serving process, its title, the wrapper, the lock.
    procs = {p.pid: p for p in processes_for(h.state_dir)}
    serving = gateway.gateway_pid
    assert serving in procs and procs[serving].name() == f.gateway_title
    assert (serving != gateway.pid) == f.respawn_wrapper
    if f.respawn_wrapper:
        assert procs[gateway.pid].name() == "openclaw"
    assert "--token" not in " ".join(psutil.Process(gateway.pid).cmdline())
    lock_dir = (h.tmpdir if f.lock_dir == "tmpdir" else h.state_dir / "tmp") / f"openclaw-{os.getuid()}"
    locks = sorted(lock_dir.glob("gateway.*.lock"))           # 2026.8.2 also: gateway.state.lock
    assert locks and all(json.loads(lock.read_text().strip())["pid"] == serving for lock in locks), locks
    assert bool(global_lock_files(h.state_dir)) == (f.lock_dir == "state")

    # One real agent turn, in the release's transcript store.
    state = h.state_dir
    assert h.llm.requests, "the fake model was never called"
    if f.sqlite_state:
        assert transcripts.kind == "sqlite"
        assert transcripts.paths == (state / "agents" / "main" / "agent" / "openclaw-agent.sqlite",)
        events = [json.loads(e) for e in sqlite_events(transcripts.paths[0])]
        assert events[0]["type"] == "session"
        assert not (state / "agents" / "main" / "sessions").exists()
    else:
        assert transcripts.kind == "jsonl"
        (path,) = transcripts.paths
        assert path.parent == state / "agents" / "main" / "sessions"
        assert (path.parent / "sessions.json").exists()
        events = jsonl_messages(path)
        assert events[0]["type"] == "session"
    roles = [e["message"]["role"] for e in events if e.get("type") == "message"]
    assert "user" in roles and "assistant" in roles
    assert transcripts.contains(transcripts.reply)

    # The gateway start did not rewrite the config (no meta, comments kept).
    assert h.config_path.read_text() == config_text(h.release.id, h.config_params)

    pids = set(procs)
    assert gateway.stop() == 0                                # SIGTERM is clean with the fake Telegram
    assert gateway.last_stop_killed == []
    assert processes_for(state) == []
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in pids)
    assert not port_is_open(h.port)


def _console_since(gateway: Gateway, offset: int) -> str:
    return gateway.log_path.read_bytes()[offset:].decode(errors="replace")


def test_matrix_restart_signal_and_sigusr2(openclaw_home: OpenClawHome, gateway: Gateway) -> None:
    """SIGUSR1 restarts the gateway and it serves again (in-process, same pid; 2026.2.25: a new,
    detached process and the launched wrapper exits 0). SIGUSR2, the 2026.9.6 restart signal,
    has no handler before 2026.9.6: it kills the gateway."""
    f = openclaw_home.release.facts
    assert f.restart_signal == "SIGUSR1"
    old = gateway.gateway_pid
    offset = gateway.log_path.stat().st_size
    os.kill(old, signal.SIGUSR1)
    wait_until(lambda: "received SIGUSR1; restarting" in _console_since(gateway, offset), 30,
               what="the gateway to log the SIGUSR1 restart")
    # "restart mode: ..." is logged once the old listener is closed: a 400 after it is the new one.
    wait_until(lambda: "restart mode: " in _console_since(gateway, offset), 60, what="the restart to begin")
    wait_until(lambda: gateway.token_status(gateway.token) == 400, 120, what="the token check after the restart")
    now = gateway.gateway_pid
    if f.restart_respawns:
        assert now != old and not psutil.pid_exists(old)
        assert gateway.proc is not None and gateway.proc.wait(timeout=30) == 0   # the wrapper left
        assert psutil.Process(now).name() == f.gateway_title and os.getsid(now) == now
        assert "full process restart" in _console_since(gateway, offset)
    else:
        assert now == old and gateway.running
        assert "in-process restart" in _console_since(gateway, offset)

    t0 = time.monotonic()
    os.kill(now, signal.SIGUSR2)
    wait_until(lambda: not psutil.pid_exists(now) or psutil.Process(now).status() == psutil.STATUS_ZOMBIE, 30,
               what="SIGUSR2 to end the gateway")
    assert gateway.token_status(gateway.token) == 0, f"still answering {time.monotonic() - t0:.1f}s after SIGUSR2"
    if not f.respawn_wrapper:
        assert gateway.proc is not None and gateway.proc.wait(timeout=10) == -signal.SIGUSR2
