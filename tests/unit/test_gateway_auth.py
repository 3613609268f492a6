"""The one token resolver (moltir.openclaw.gateway_auth): every source OpenClaw takes the gateway's
credential from, in OpenClaw's order, and the callers that used to compute it themselves now agree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring_fakes as fakes
import pytest

from moltir import keystore
from moltir.actions.token import old_token
from moltir.openclaw import discover
from moltir.openclaw.gateway_auth import resolve_token, token_setting

TOKEN = "t" * 48


@pytest.fixture
def mem() -> Iterator[fakes.MemKeyring]:
    before = keyring.get_keyring()
    kr = fakes.MemKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(before)


def _install(tmp_path: Path, auth: dict[str, Any] | None, *, env: dict[str, str] | None = None,
             dotenv: str | None = None) -> Any:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"mode": "local", **({"auth": auth} if auth else {})}}))
    if dotenv is not None:
        (state / ".env").write_text(dotenv)
    return discover(state_dir=str(state), env={"HOME": str(tmp_path), "PATH": "", **(env or {})})


def test_token_setting_kinds() -> None:
    assert token_setting({}) == ("absent", None)
    assert token_setting({"gateway": {"auth": {"token": "x"}}}) == ("plaintext", "x")
    assert token_setting({"gateway": {"auth": {"token": "${OPENCLAW_GATEWAY_TOKEN}"}}})[0] == "env-shorthand"
    assert token_setting({"gateway": {"auth": {"token": {"source": "env", "id": "T"}}}}) == \
        ("ref", {"source": "env", "id": "T"})


@pytest.mark.parametrize(("auth", "env", "dotenv", "gw_env", "want"), [
    ({"token": TOKEN}, {}, None, None, (TOKEN, "config", "config (plaintext)")),
    ({"token": "${MY_TOK}"}, {"MY_TOK": TOKEN}, None, None, (TOKEN, "env", "environment variable MY_TOK")),
    ({"token": {"source": "env", "provider": "default", "id": "MY_TOK"}}, {}, None, {"MY_TOK": TOKEN},
     (TOKEN, "env", "environment variable MY_TOK")),
    ({"token": {"source": "file", "provider": "vault", "id": "/x"}}, {}, None, None,
     (None, "unknown", "SecretRef file:vault (moltir cannot read it)")),
    ({"password": TOKEN}, {}, None, None, (TOKEN, "password", "config (gateway.auth.password)")),
    (None, {}, f"OPENCLAW_GATEWAY_TOKEN='{TOKEN}'\n", None,
     (TOKEN, "env-var", "OPENCLAW_GATEWAY_TOKEN (no token in the config)")),
    (None, {}, None, {"CLAWDBOT_GATEWAY_TOKEN": TOKEN},
     (TOKEN, "env-var", "CLAWDBOT_GATEWAY_TOKEN (no token in the config)")),
    (None, {}, None, None, (None, "none", "none (the gateway makes an ephemeral token at each start)")),
], ids=["plaintext", "shorthand", "env-ref", "foreign-ref", "password", "dotenv", "gateway-env", "none"])
def test_each_source(tmp_path: Path, auth: Any, env: dict[str, str], dotenv: str | None,
                     gw_env: dict[str, str] | None, want: tuple[str | None, str, str]) -> None:
    found = resolve_token(_install(tmp_path, auth, env=env, dotenv=dotenv), gateway_env=gw_env)
    assert (found.value, found.source, found.detail) == want
    assert TOKEN not in repr(found)


def test_moltirs_keyring_ref_and_what_configured_means(tmp_path: Path, mem: fakes.MemKeyring) -> None:
    install = _install(tmp_path, None)
    install = _install(tmp_path, {"token": keystore.token_ref(install)})
    assert resolve_token(install).configured() == (None, "keyring entry missing")
    keystore.store(keystore.SERVICE, keystore.entry_name(install), TOKEN)
    found = resolve_token(install)
    assert (found.value, found.source) == (TOKEN, "keyring")
    # every caller answers the same
    config = install.read_config()
    assert old_token(install, config, []) == (TOKEN, "keyring (moltir SecretRef)")
    assert keystore.configured_token(install) == (TOKEN, "keyring")
    # a password is the gateway's credential, but not a token the config names: not "configured"
    pw = _install(tmp_path, {"password": TOKEN})
    assert resolve_token(pw).configured() == (None, "none")
    (tmp_path / "state" / "openclaw.json").write_text("{ broken")
    assert resolve_token(pw).configured() == (None, "unreadable")
