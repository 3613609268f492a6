"""``moltir rotate plan``: every credential of a fixture home with how moltir would rotate it, no value
in the output; the store follows the capability table (``telegram_token_secretref``, ``secret_refs``),
whose new row is pinned against the docs of the packages the real-gateway tests install."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.harness.envelope import moltir_json
from tests.unit.installed import installed_package
from tests.unit.test_credentials import V, _home

from moltir.cli import cli
from moltir.openclaw import capabilities as capmod


def _plan(state: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["rotate", "plan", "--state-dir", str(state), *extra])
    return result.exit_code, result.stdout


def _set_release(state: Path, version: str) -> None:
    cfg = state / "openclaw.json"
    cfg.write_text(cfg.read_text().replace('lastTouchedVersion: "2026.9.6"', f'lastTouchedVersion: "{version}"'))


@pytest.mark.parametrize(("version", "tg_store", "model_store"),
                         [("2026.9.6", "keyring-ref", "keyring-ref"), ("2026.3.1", "plaintext", "keyring-ref"),
                          ("2026.2.25", "plaintext", "plaintext")])
def test_plan_says_how_each_credential_is_rotated(tmp_path: Path, version: str, tg_store: str,
                                                  model_store: str) -> None:
    state = _home(tmp_path)
    _set_release(state, version)
    code, out = _plan(state, "--json")
    assert code == 0, out
    for name, value in V.items():
        assert value not in out, f"the {name} value leaked"
    plan = {c["id"]: c for c in moltir_json(out)["credentials"]}
    tg = plan["channels.telegram.accounts.ops.botToken"]["rotation"]
    assert tg["by"] == "moltir rotate" and tg["store"] == tg_store
    assert tg["validate"] == "Telegram getMe at https://api.telegram.org/bot<token>/getMe"
    assert tg["revoke_old"]["by"] == "person" and "BotFather" in tg["revoke_old"]["how"]
    # every account has its own token: no release resolves a SecretRef at the top-level botToken then
    assert plan["channels.telegram.botToken"]["rotation"]["store"] == "plaintext"
    model = plan["models.providers.openai.apiKey"]["rotation"]
    assert model["store"] == model_store and model["validate"] == "GET models list at https://api.openai.com/v1/models"
    dotenv = plan["dotenv.OPENAI_API_KEY"]["rotation"]
    assert dotenv["store"] == "dotenv" and dotenv["reload"] == "restart the gateway the way it runs"
    assert plan["gateway.auth.token"]["rotation"]["by"] == "contain"
    assert plan["hooks.token"]["rotation"]["by"] == "hand"
    discord = plan["channels.discord.token"]["rotation"]
    assert discord["by"] == "moltir rotate" and discord["store"] == tg_store  # the same first release, 2026.3.2
    assert discord["validate"] == "Discord GET /users/@me at https://discord.com/api/v10/users/@me"
    assert discord["revoke_old"]["by"] == "person" and "Developer Portal" in discord["revoke_old"]["how"]
    slack = {k: plan[f"channels.slack.{k}"]["rotation"] for k in ("botToken", "appToken", "signingSecret")}
    assert slack["botToken"]["validate"] == "Slack auth.test at https://slack.com/api/auth.test"
    assert slack["botToken"]["revoke_old"]["by"] == "api"
    assert slack["appToken"]["validate"] == "Slack apps.connections.open at https://slack.com/api/apps.connections.open"
    app_revoke = slack["appToken"]["revoke_old"]
    assert app_revoke["by"] == "person" and "App-Level Tokens" in app_revoke["how"]
    assert slack["signingSecret"]["validate"].startswith("its form only")
    assert slack["signingSecret"]["revoke_old"]["by"] == "person"
    assert {r["store"] for r in slack.values()} == {"keyring-ref" if version == "2026.9.6" else "plaintext"}


def test_plan_follows_apiroot_and_proxy_and_prints_no_value(tmp_path: Path) -> None:
    state = _home(tmp_path)
    cfg = state / "openclaw.json"
    cfg.write_text(cfg.read_text().replace("maxTokens: 5,", 'maxTokens: 5, apiRoot: "http://127.0.0.1:9/tg/", '
                                                            'proxy: "http://127.0.0.1:8/",'))
    code, text = _plan(state)
    assert code == 0, text
    for value in V.values():
        assert value not in text
    assert "Telegram getMe at http://127.0.0.1:9/tg/bot<token>/getMe through proxy http://127.0.0.1:8/" in text
    assert "moltir rotate channels.telegram.botToken" in text


def test_anything_but_plan_is_refused_with_exit_2(tmp_path: Path) -> None:
    state = _home(tmp_path)
    result = CliRunner().invoke(cli, ["rotate", "hooks.token", "--state-dir", str(state)])
    assert result.exit_code == 2


def _surface_lists_telegram(package: Path) -> bool:
    docs = package / "docs"
    text = ""
    for name in ("reference/secretref-credential-surface.md", "gateway/secrets.md"):
        if (docs / name).is_file():
            text += (docs / name).read_text(encoding="utf-8")
    return bool(re.search(r"channels\.telegram\.botToken", text))


@pytest.mark.parametrize("version", ["2026.1.29", "2026.9.6"])
def test_telegram_secretref_row_matches_the_installed_package(version: str) -> None:
    package = installed_package(version)
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert caps.telegram_token_secretref is _surface_lists_telegram(package)


def test_status_shows_each_credential_rotated_pending_or_not(tmp_path: Path) -> None:
    from moltir.commands import rotations
    from moltir.redaction import fingerprint

    state = _home(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "credentials", action: "credentials.inventory" } ] }')
    case = tmp_path / "case"
    code = CliRunner().invoke(cli, ["contain", "--runbook", str(rb), "--case-dir", str(case), "--yes",
                                    "--state-dir", str(state)]).exit_code
    assert code == 0
    rotations.record(str(state), "channels.telegram.accounts.ops.botToken", "telegram", fingerprint("x" * 20), "c1")
    rotations.record(str(state), "models.providers.openai.apiKey", "openai", fingerprint("y" * 20), "c2")
    result = CliRunner().invoke(cli, ["status", "--json", "--case-dir", str(case), "--state-dir", str(state)])
    steps = moltir_json(result.stdout)["credentials"]
    todo = {t["id"]: t["state"] for t in steps["to_rotate"]}
    assert todo["channels.telegram.accounts.ops.botToken"] == "pending a person"  # BotFather /revoke
    assert "models.providers.openai.apiKey" not in todo
    assert steps["rotated_by_moltir_rotate"] == ["models.providers.openai.apiKey"]
    assert todo["hooks.token"] == "not rotated"
    text = CliRunner().invoke(cli, ["status", "--case-dir", str(case), "--state-dir", str(state)]).stdout
    assert "channels.telegram.accounts.ops.botToken" in text and "pending a person" in text
    for value in V.values():
        assert value not in text + result.stdout


def test_the_old_telegram_token_is_polled_until_refused() -> None:
    """``--revoke-old``: getMe with the old token until the issuer refuses it (here: after two answers), on
    a real HTTP server (the harness's fake Bot API); ``--no-wait`` asks once."""
    from tests.harness.faketg import FakeTelegram

    from moltir.commands import revoke_wait

    old = "555555:AAOldTokenOldTokenOldToken"
    with FakeTelegram() as tg:
        check = revoke_wait.telegram_check(tg.url, old, {}, None)
        once = revoke_wait.old_refused(check, wait=False, timeout_s=30)
        assert not once.refused and "still accepted" in once.detail and old not in once.detail

        def refuse_on_third() -> object:
            if len(tg.tokens_for("getMe")) >= 2:
                tg.refused_tokens.add(old)
            return check()

        rev = revoke_wait.old_refused(refuse_on_third, wait=True, timeout_s=30, poll_s=0.01)  # type: ignore[arg-type]
        assert rev.refused and "401" in rev.detail
        assert tg.tokens_for("getMe").count(old) == 3
        late = revoke_wait.old_refused(revoke_wait.telegram_check(tg.url, "1:never", {}, None), wait=True,
                                       timeout_s=0.05, poll_s=0.01)
        assert not late.refused


def test_a_dotenv_key_is_replaced_in_place_and_the_old_bytes_go_to_the_case(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from moltir.actions.credential_rotate.writes import DOTENV_PREIMAGE, write_dotenv
    from moltir.engine.case import Case

    env_file = tmp_path / ".env"
    env_file.write_text("# keys\nexport OPENAI_API_KEY=sk-old-0000000000\nLOG_LEVEL=debug\nOPENAI_API_KEY_2=keep\n")
    env_file.chmod(0o644)
    case = Case(tmp_path / "case")
    (tmp_path / "case").mkdir(mode=0o700)
    write_dotenv(SimpleNamespace(case=case), env_file, "OPENAI_API_KEY", "sk-new-1111111111")  # type: ignore[arg-type]
    assert env_file.read_text() == ("# keys\nexport OPENAI_API_KEY=sk-new-1111111111\nLOG_LEVEL=debug\n"
                                    "OPENAI_API_KEY_2=keep\n")
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert "sk-old-0000000000" in (tmp_path / "case" / DOTENV_PREIMAGE).read_text()
