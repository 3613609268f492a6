"""``moltir rotate`` for Discord and Slack credentials, and ``--revoke-old`` through the issuers' APIs
(Slack ``auth.revoke``, OpenRouter key delete), against small loopback fakes of those APIs and an
in-process keyring. No gateway runs here (the rotation says "reads it at its next start"); the real
gateway's side is in tests/integration/test_rotate_real.py. No value reaches the output."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from tests.harness.fakechat import FakeAPIs
from tests.unit import keyring_fakes as fakes
from tests.unit.installed import installed_package

from moltir.cli import cli
from moltir.commands import rotations
from moltir.openclaw import capabilities as capmod
from moltir.openclaw import provider_check, provider_revoke

OLD = {"discord": "MTAx.discord-old.AAAAAAAAAAAA", "slackbot": "xoxb-1-old-bot-BBBBBBBB",
       "slackapp": "xapp-1-old-app-CCCCCCCC", "sign": "0123456789abcdef0123456789abcdef",
       "openrouter": "sk-or-v1-old-DDDDDDDDDDDD", "gw": "gw-token-0123456789abcdef"}
NEW = {"discord": "MTAy.discord-new.EEEEEEEEEEEE", "slackbot": "xoxb-2-new-bot-FFFFFFFF",
       "slackapp": "xapp-2-new-app-GGGGGGGG", "sign": "fedcba9876543210fedcba9876543210",
       "openrouter": "sk-or-v1-new-HHHHHHHHHHHH"}
MGMT = "sk-or-v1-management-IIIIIIII"


def _config(version: str, url: str) -> str:
    return f"""{{
  meta: {{ lastTouchedVersion: "{version}" }},
  gateway: {{ mode: "local", auth: {{ token: "{OLD['gw']}" }} }},
  models: {{ providers: {{ openrouter: {{ baseUrl: "{url}/openrouter", apiKey: "{OLD['openrouter']}" }} }} }},
  channels: {{
    discord: {{ token: "{OLD['discord']}" }},
    slack: {{ botToken: "{OLD['slackbot']}", appToken: "{OLD['slackapp']}", signingSecret: "{OLD['sign']}" }},
  }},
}}
"""


@pytest.fixture
def apis() -> Iterator[FakeAPIs]:
    with FakeAPIs() as fake:
        fake.good |= {OLD[k] for k in ("discord", "slackbot", "slackapp", "openrouter")}
        fake.good |= {NEW[k] for k in ("discord", "slackbot", "slackapp", "openrouter")}
        fake.labels = {OLD["openrouter"]: "sk-or-v1-old...DDDD", NEW["openrouter"]: "sk-or-v1-new...HHHH"}
        fake.management.add(MGMT)
        yield fake


@pytest.fixture
def home(tmp_path: Path, apis: FakeAPIs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "openclaw.json").write_text(_config("2026.9.6", apis.url))
    (state / "openclaw.json").chmod(0o600)
    monkeypatch.setenv("MOLTIR_HOME", str(tmp_path / "moltir"))
    monkeypatch.setenv("MOLTIR_DISCORD_API", f"{apis.url}/discord")
    monkeypatch.setenv("MOLTIR_SLACK_API", f"{apis.url}/slack")
    before = keyring.get_keyring()
    kr = fakes.MemKeyring()
    keyring.set_keyring(kr)
    yield state
    keyring.set_keyring(before)


def _rotate(state: Path, cred: str, stdin: str, *extra: str) -> tuple[int, str]:
    bound = ("--wait-timeout", "5") if "--revoke-old" in extra else ()  # a test that fails does not hang
    result = CliRunner().invoke(cli, ["rotate", cred, "--from-stdin", "--state-dir", str(state), *extra, *bound],
                                input=stdin)
    return result.exit_code, result.stdout + result.stderr


def _no_value(text: str) -> None:
    for value in (*OLD.values(), *NEW.values(), MGMT):
        assert value not in text


def _state(state: Path, cred: str) -> str:
    return rotations.state_of(rotations.load(str(state), os.environ), cred)


def _keyring_value(cred: str) -> str | None:
    kr = keyring.get_keyring()
    assert isinstance(kr, fakes.MemKeyring)
    return next((v for (_s, entry), v in kr.entries.items() if entry.endswith(f":{cred}")), None)


def test_slack_bot_token_is_validated_stored_by_ref_and_the_old_one_revoked(home: Path, apis: FakeAPIs) -> None:
    code, out = _rotate(home, "channels.slack.botToken", NEW["slackbot"] + "\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert ("POST", "/slack/auth.test", NEW["slackbot"]) in apis.calls  # validated before anything changed
    assert apis.calls.index(("POST", "/slack/auth.test", NEW["slackbot"])) < \
        apis.calls.index(("POST", "/slack/auth.revoke", OLD["slackbot"]))
    text = (home / "openclaw.json").read_text()
    assert OLD["slackbot"] not in text and NEW["slackbot"] not in text  # 2026.9.6: a SecretRef
    assert re.search(r'source: "exec"', text) or '"exec"' in text
    assert _keyring_value("channels.slack.botToken") == NEW["slackbot"]
    assert OLD["slackbot"] not in apis.good  # auth.revoke was called with the OLD token
    assert "old token is revoked" in out and "refused by its issuer" in out
    assert _state(home, "channels.slack.botToken") == rotations.ROTATED


def test_a_refused_new_value_changes_nothing(home: Path, apis: FakeAPIs) -> None:
    before = (home / "openclaw.json").read_bytes()
    for cred, bad in (("channels.slack.botToken", "xoxb-refused-000000"), ("channels.discord.token", "MTA.bad.x"),
                      ("channels.slack.appToken", NEW["slackbot"]),  # a bot token where the app token goes
                      ("channels.slack.signingSecret", "not-hex-at-all-zzzzzzzzzzzzzzzzz")):
        code, out = _rotate(home, cred, bad + "\n")
        assert code == 2, out
        lines = [ln for ln in out.splitlines() if ln.strip()]
        assert len(lines) == 1 and "nothing changed" in lines[0], out
        assert bad not in out
    assert (home / "openclaw.json").read_bytes() == before
    kr = keyring.get_keyring()
    assert isinstance(kr, fakes.MemKeyring) and not [e for e in kr.entries if e[1].startswith("credential:")]


def test_an_unreachable_slack_api_is_exit_3_and_changes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLTIR_SLACK_API", "http://127.0.0.1:9/slack")
    before = (home / "openclaw.json").read_bytes()
    code, out = _rotate(home, "channels.slack.botToken", NEW["slackbot"] + "\n")
    assert code == 3 and "nothing changed" in out
    assert (home / "openclaw.json").read_bytes() == before


def test_a_slack_error_that_is_not_about_the_token_is_exit_3(home: Path, apis: FakeAPIs) -> None:
    apis.slack_error = "ratelimited"  # Slack could not say whether the token is good
    before = (home / "openclaw.json").read_bytes()
    code, out = _rotate(home, "channels.slack.botToken", NEW["slackbot"] + "\n")
    assert code == 3 and "ratelimited" in out and "nothing changed" in out, out
    assert (home / "openclaw.json").read_bytes() == before


def test_discord_needs_a_person_moltir_prints_the_steps_and_polls(home: Path, apis: FakeAPIs) -> None:
    code, out = _rotate(home, "channels.discord.token", NEW["discord"] + "\n", "--revoke-old", "--no-wait")
    assert code == 0, out
    _no_value(out)
    assert ("GET", "/discord/users/@me", NEW["discord"]) in apis.calls
    assert "Developer Portal" in out or "developers/applications" in out
    assert "Reset Token" in out and "still accepted" in out
    assert ("GET", "/discord/users/@me", OLD["discord"]) in apis.calls  # the old one asked once
    assert _state(home, "channels.discord.token") == rotations.PENDING
    assert _keyring_value("channels.discord.token") == NEW["discord"]
    assert OLD["discord"] not in (home / "openclaw.json").read_text()


def test_the_old_discord_token_is_polled_until_refused(apis: FakeAPIs) -> None:
    from moltir.commands import revoke_wait

    polls = 0

    def check() -> provider_check.Check:
        nonlocal polls
        polls += 1
        if polls == 3:
            apis.good.discard(OLD["discord"])  # the person pressed Reset Token
        return provider_check.discord(f"{apis.url}/discord", OLD["discord"], {})

    rev = revoke_wait.old_refused(check, wait=True, timeout_s=30, poll_s=0.01)
    assert rev.refused and "401" in rev.detail and polls == 3


def test_slack_app_token_and_signing_secret(home: Path, apis: FakeAPIs) -> None:
    code, out = _rotate(home, "channels.slack.appToken", NEW["slackapp"] + "\n")
    assert code == 0, out
    assert ("POST", "/slack/apps.connections.open", NEW["slackapp"]) in apis.calls
    code, out = _rotate(home, "channels.slack.signingSecret", NEW["sign"] + "\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert "Regenerate" in out  # only a person can; Slack cannot be asked about a signing secret
    assert _state(home, "channels.slack.signingSecret") == rotations.PENDING
    text = (home / "openclaw.json").read_text()
    assert OLD["sign"] not in text and OLD["slackapp"] not in text


def test_openrouter_key_is_deleted_with_a_management_key_from_stdin(home: Path, apis: FakeAPIs) -> None:
    cred = "models.providers.openrouter.apiKey"
    code, out = _rotate(home, cred, NEW["openrouter"] + "\n", "--revoke-old")
    assert code == 2 and "management key" in out and "nothing changed" in out  # the second line is missing
    code, out = _rotate(home, cred, f"{NEW['openrouter']}\nsk-or-v1-wrong-management\n", "--revoke-old")
    assert code == 2 and "refused the management key" in out, out
    assert OLD["openrouter"] in (home / "openclaw.json").read_text()  # nothing changed
    code, out = _rotate(home, cred, f"{NEW['openrouter']}\n{MGMT}\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert ("DELETE", "/openrouter/keys/h0", MGMT) in apis.calls  # the old key's hash, by its label
    assert ("DELETE", "/openrouter/keys/h1", MGMT) not in apis.calls
    assert "old key is deleted" in out and "refused by its issuer" in out
    assert _state(home, cred) == rotations.ROTATED
    assert _keyring_value(cred) == NEW["openrouter"]


def test_the_old_openrouter_key_is_found_on_a_later_page_of_the_list(apis: FakeAPIs) -> None:
    others = {f"sk-or-v1-other-{i}": f"sk-or-v1-oth...{i:04d}" for i in range(4)}
    apis.labels = {**others, **apis.labels}   # the old key is listed 5th: on the 3rd page of 2
    apis.page_size = 2
    out = provider_revoke.openrouter_delete(f"{apis.url}/openrouter", OLD["openrouter"], MGMT, {})
    assert out.done, out
    deleted = [c for c in apis.calls if c[0] == "DELETE"]
    assert deleted == [("DELETE", "/openrouter/keys/h4", MGMT)]
    pages = [c[1] for c in apis.calls if c[0] == "GET" and c[1].startswith("/openrouter/keys")]
    assert pages == [f"/openrouter/keys?offset={n}" for n in (0, 2, 4, 6)]


def test_plaintext_before_2026_3_2(tmp_path: Path, home: Path, apis: FakeAPIs) -> None:
    (home / "openclaw.json").write_text(_config("2026.2.25", apis.url))
    code, out = _rotate(home, "channels.discord.token", NEW["discord"] + "\n")
    assert code == 0, out
    text = (home / "openclaw.json").read_text()
    assert NEW["discord"] in text and OLD["discord"] not in text  # no SecretRef there: the 0600 config
    assert (home / "openclaw.json").stat().st_mode & 0o777 == 0o600


def _surface_lists_chat(package: Path) -> bool:
    doc = package / "docs" / "reference" / "secretref-credential-surface.md"
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    return all(f"`{k}`" in text for k in ("channels.discord.token", "channels.slack.botToken",
                                            "channels.slack.appToken", "channels.slack.signingSecret"))


@pytest.mark.parametrize("version", ["2026.1.29", "2026.9.6"])
def test_chat_secretref_row_matches_the_installed_package(version: str) -> None:
    package = installed_package(version)
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert caps.chat_token_secretref is _surface_lists_chat(package)


def test_revocation_is_recorded_in_the_ledger_without_values(home: Path) -> None:
    code, _out = _rotate(home, "channels.slack.botToken", NEW["slackbot"] + "\n")
    assert code == 0
    ledger = (Path(os.environ["MOLTIR_HOME"]) / "installs" / "rotations.json").read_text()
    _no_value(ledger)
    entry = json.loads(ledger)[str(home)]["channels.slack.botToken"]
    assert entry["state"] == rotations.ROTATED and "auth.revoke" in entry["revoke_old"]
