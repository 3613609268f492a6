"""``moltir rotate CREDENTIAL-ID --from-stdin`` against the REAL gateway and the REAL Secret Service
(2026.9.6: the value goes into the keyring and the config points at it with moltir's exec SecretRef,
SIGUSR2 makes the gateway re-resolve it; 2026.1.29: no SecretRef there, the value goes into the 0600
config and the gateway's config file watcher applies it; the keyring keeps the record).

Proved with the fakes: after the rotation the fake Telegram sees ``getUpdates`` only with the new bot
token, the fake model server gets the new key on the next agent turn and never the old one again, and the
gateway still answers on its own token. On 2026.9.6 the same session then rotates a provider key kept in the
state dir's ``.env`` (the provider entry reads ``${OPENAI_API_KEY}``): the gateway restarts, the next turn
sends only the new key. Before that, a value the issuer refuses (exit 2) and a locked
keyring (exit 3) change nothing. No value reaches moltir's console, a child's argv or moltir's files
(the case's pre-images excepted: they are the evidence of what was there).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import json5
import pytest
from tests.harness.configs import TG_OPS_TOKEN
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import wait_until
from tests.harness.secret_service import SecretService
from tests.harness.transcripts import run_agent_turn
from tests.integration.test_token_real import ArgvScanner, assert_no_leak, keyring_gateway, keyring_value

from moltir.commands import rotations
from moltir.openclaw import discover
from moltir.redaction import fingerprint

__all__ = ["keyring_gateway"]  # the fixture, used by name
OLD_MODEL_KEY = "sk-fake-not-a-secret"
DOTENV_RELEASE = "2026.9.6"  # the .env key rotation runs on this release only (test-time budget)


@pytest.fixture
def dotenv_key(openclaw_home: OpenClawHome) -> str | None:
    """On :data:`DOTENV_RELEASE`, a model key in the state dir's ``.env``, written before the gateway starts
    (the gateway reads ``.env`` into its environment at start; listed before ``keyring_gateway``)."""
    if openclaw_home.release.id != DOTENV_RELEASE:
        return None
    key = f"sk-dotenv-old-{secrets.token_hex(12)}"
    env_file = openclaw_home.state_dir / ".env"
    old = env_file.read_text() if env_file.exists() else ""
    env_file.write_text(old + f"OPENAI_API_KEY={key}\n")
    env_file.chmod(0o600)
    return key


def _rotate(env: dict[str, str], cred: str, value: str, roots: list[int]) -> tuple[subprocess.CompletedProcess[str],
                                                                                  set[tuple[str, ...]]]:
    proc = subprocess.Popen([sys.executable, "-m", "moltir", "rotate", cred, "--from-stdin"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scanner = ArgvScanner([proc.pid, *roots])
    scanner.start()
    try:
        out, err = proc.communicate(value + "\n", timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seen = scanner.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def _entry(home: OpenClawHome, cred: str) -> str:
    return f"credential:{discover(env=home.env).key}:{cred}"


def _refusals_change_nothing(home: OpenClawHome, gw: Gateway, service: SecretService, env: dict[str, str]) -> None:
    before = home.config_path.read_bytes()
    bad = f"223456789:AARefused{secrets.token_hex(12)}"
    home.telegram.refused_tokens.add(bad)
    refused, _ = _rotate(env, "channels.telegram.accounts.ops.botToken", bad, [gw.gateway_pid])
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
    assert len(lines) <= 2 and "refused" in lines[0] and "Traceback" not in refused.stderr, refused.stderr
    assert bad not in refused.stdout + refused.stderr
    service.lock()
    try:
        locked, _ = _rotate(env, "channels.telegram.accounts.ops.botToken",
                            f"223456789:AALocked{secrets.token_hex(12)}", [gw.gateway_pid])
    finally:
        service.unlock()
    assert locked.returncode == 3, locked.stdout + locked.stderr
    assert "Traceback" not in locked.stderr
    assert home.config_path.read_bytes() == before
    assert keyring_value(service, _entry(home, "channels.telegram.accounts.ops.botToken")) is None


def _getupdates_only_with(home: OpenClawHome, gw: Gateway, new: str, old: str) -> None:
    tg = home.telegram

    def polled_new() -> bool:
        calls = tg.tokens_for("getUpdates")
        return new in calls and calls[calls.index(new):].count(new) >= 3

    try:
        wait_until(polled_new, timeout=60, what="getUpdates with the new bot token")
    except TimeoutError:
        calls = [("new" if t == new else "old" if t == old else t.split(":")[0], m) for t, m in tg.token_calls]
        raise AssertionError(f"no getUpdates with the new token; calls {calls[-12:]}\n{gw.log_tail(40)}") from None
    calls = tg.tokens_for("getUpdates")
    assert old not in calls[calls.index(new):], "the old bot token polled after the new one"


def _rotate_dotenv_key(home: OpenClawHome, gw: Gateway, env: dict[str, str], old: str) -> list[str]:
    """The provider key moves to ``${OPENAI_API_KEY}``, which the running gateway can only resolve from the
    environment it started with (the old ``.env`` value); ``moltir rotate dotenv.OPENAI_API_KEY`` must restart
    it: the next turn then sends the new key only (without the restart it would send the old one, or the
    keyring key if the config change had not been applied), and the old one was never sent. No turn with the
    old key first: it would cost an in-process restart and a turn more (test-time budget)."""
    cfg = json5.loads(home.config_path.read_text())
    cfg["models"]["providers"]["fake"]["apiKey"] = "${OPENAI_API_KEY}"
    home.config_path.write_text(json.dumps(cfg, indent=2) + "\n")
    new = f"sk-dotenv-new-{secrets.token_hex(16)}"
    run, seen = _rotate(env, "dotenv.OPENAI_API_KEY", new, [gw.gateway_pid])
    assert run.returncode == 0, run.stdout + run.stderr
    env_text = (home.state_dir / ".env").read_text()
    assert f"OPENAI_API_KEY={new}" in env_text and old not in env_text
    assert ("GET /v1/models", new) in home.llm.keys  # validated at the provider first
    mark = len(home.llm.keys)
    run_agent_turn(home, "after the .env rotation")
    after = home.llm.keys_seen()[mark:]
    assert after and set(after) == {new}, "the next agent turn did not use (only) the new .env key"
    assert old not in home.llm.keys_seen()
    assert gw.token_status(home.token) == 400
    assert_no_leak([new, old], outputs=[run.stdout, run.stderr], argvs=seen, env=env)
    return [new, old]


def test_rotate_telegram_token_and_model_key(openclaw_home: OpenClawHome, secret_service: SecretService,
                                             dotenv_key: str | None, keyring_gateway: Gateway) -> None:
    home, gw = openclaw_home, keyring_gateway
    env = dict(home.env)
    _refusals_change_nothing(home, gw, secret_service, env)

    # an account's token: both releases poll with it (2026.1.29 starts no default account next to accounts)
    cred = "channels.telegram.accounts.ops.botToken"
    bot_id = TG_OPS_TOKEN.split(":")[0]
    new_tg = f"{bot_id}:AARotated{secrets.token_hex(14)}"
    home.telegram.webhooks[bot_id] = "https://attacker.invalid/hook"  # set by whoever held the old token
    run, seen = _rotate(env, cred, new_tg, [gw.gateway_pid])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "webhook nobody configured" in run.stdout + run.stderr and "attacker.invalid" in run.stdout + run.stderr
    assert TG_OPS_TOKEN not in home.config_path.read_text()
    assert keyring_value(secret_service, _entry(home, cred)) == new_tg
    _getupdates_only_with(home, gw, new_tg, TG_OPS_TOKEN)
    assert gw.token_status(home.token) == 400  # the gateway answers on its own token as before

    new_key = f"sk-rotated-{secrets.token_hex(16)}"
    run2, seen2 = _rotate(env, "models.providers.fake.apiKey", new_key, [gw.gateway_pid])
    assert run2.returncode == 0, run2.stdout + run2.stderr
    assert OLD_MODEL_KEY not in home.config_path.read_text()
    assert ("GET /v1/models", new_key) in home.llm.keys  # validated at the provider first
    mark = len(home.llm.keys)
    run_agent_turn(home, "hello again")
    after = home.llm.keys_seen()[mark:]
    assert after and set(after) == {new_key}, "the next agent turn did not use (only) the new key"
    assert gw.token_status(home.token) == 400
    done = rotations.load(str(home.state_dir), env)
    assert done[cred]["state"] == rotations.PENDING  # BotFather /revoke is a person's step
    assert done["models.providers.fake.apiKey"]["new_fingerprint"] == fingerprint(new_key)
    assert_no_leak([new_tg, new_key, TG_OPS_TOKEN, OLD_MODEL_KEY], outputs=[run.stdout, run.stderr, run2.stdout,
                   run2.stderr], argvs=seen | seen2, env=env)
    if dotenv_key is not None:
        _rotate_dotenv_key(home, gw, env, dotenv_key)


def test_unknown_and_by_hand_credentials_are_refused(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    env = dict(openclaw_home.env)
    for cred in ("no.such.credential", "gateway.auth.token"):
        run, _ = _rotate(env, cred, "x" * 20, [])
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr


# the harness config's Slack and Discord blocks (tests/harness/configs.py): no release can point them at a
# fake API (no apiRoot for either), so their made-up tokens never reach a real service from moltir
OLD_CHAT = {"channels.slack.botToken": "xoxb-fake", "channels.discord.accounts.community.token": "discord-fake-token-2"}


@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_rotate_slack_and_discord_tokens_on_the_real_release(openclaw_home: OpenClawHome,
                                                            secret_service: SecretService) -> None:
    """2026.9.6 only (the release that takes these SecretRefs; 2026.1.29's plaintext path is the Telegram
    and model one above, and unit tests cover the Discord/Slack store per release). Validation goes to a
    loopback fake through MOLTIR_SLACK_API / MOLTIR_DISCORD_API (for tests only): the gateway cannot be
    pointed at a fake Slack or Discord, so "the gateway uses the new token" is not provable here. What is:
    the config holds only SecretRefs, the keyring the new values, the release accepts the config
    (``config validate``). 2026.9.6 ships no Discord or Slack plugin (they are installed separately), so
    its ``secrets audit --allow-exec`` checks none of these refs (refsChecked 0, tried): not asserted."""
    from tests.harness.fakechat import FakeAPIs

    home = openclaw_home
    slack_id, discord_id = OLD_CHAT
    new = {slack_id: f"xoxb-2-new-{secrets.token_hex(12)}", discord_id: f"MTAy.new.{secrets.token_hex(12)}"}
    with FakeAPIs() as apis:
        apis.good |= {*OLD_CHAT.values(), *new.values()}
        env = {**home.env, **secret_service.env, "MOLTIR_SLACK_API": f"{apis.url}/slack",
               "MOLTIR_DISCORD_API": f"{apis.url}/discord"}
        slack, seen = _rotate(env, slack_id, new[slack_id], [])
        discord, seen2 = _rotate(env, discord_id, new[discord_id], [])
    for run in (slack, discord):
        assert run.returncode == 0, run.stdout + run.stderr
    assert ("POST", "/slack/auth.test", new[slack_id]) in apis.calls
    assert ("GET", "/discord/users/@me", new[discord_id]) in apis.calls
    text = home.config_path.read_text()
    for cred in OLD_CHAT:
        assert f'"{OLD_CHAT[cred]}"' not in text and new[cred] not in text  # a SecretRef there now
        assert keyring_value(secret_service, _entry(home, cred)) == new[cred]
    valid, detail = home.validate_config()
    assert valid, detail
    assert_no_leak([*new.values(), *OLD_CHAT.values()], outputs=[slack.stdout, slack.stderr, discord.stdout,
                   discord.stderr], argvs=seen | seen2, env=env)
