"""How moltir rotates one credential of the inventory: where the new value is validated, where it is
stored, how the running gateway re-reads it, and who can revoke the old one. No policy of moltir's
beyond the answers: :mod:`moltir.commands.rotate` prints them (``moltir rotate plan``) and acts on them.

What ``moltir rotate`` handles (``family``):

* ``telegram``: ``channels.telegram.botToken`` and ``channels.telegram.accounts.<id>.botToken`` in the
  config. Validated with ``getMe`` at the account's ``apiRoot`` (else the channel's, else
  ``https://api.telegram.org``), through the account's or the channel's ``proxy`` when one is set (the
  releases without ``apiRoot`` reach a self-hosted Bot API that way).
* ``model``: ``models.providers.<id>.apiKey`` in the config, and a provider key in the state dir's
  ``.env`` (``dotenv.OPENAI_API_KEY``...). Validated with ``GET <baseUrl>/models``: the provider entry's
  ``baseUrl`` (for a ``.env`` variable: the entry whose ``apiKey`` names that variable, else the entry
  named after the provider, else the provider's public API).

* ``discord``: ``channels.discord[.accounts.<id>].token``. Validated with ``GET <api>/users/@me``
  (``Authorization: Bot <token>``) at ``https://discord.com/api/v10``, through the account's or the
  channel's ``proxy`` when one is set (the gateway's startup REST lookups use it).
* ``slack`` (``botToken``, ``userToken``): ``POST <api>/auth.test``; ``slack-app`` (``appToken``, Socket
  Mode): ``POST <api>/apps.connections.open`` (it only hands out a WebSocket URL, nothing connects);
  ``slack-signing`` (``signingSecret``): Slack has no API that checks one, so only its form is checked
  (32 hex characters, as Slack shows it). ``<api>`` is ``https://slack.com/api``.

* ``matrix``: ``channels.matrix[.accounts.<id>].accessToken``. Validated with
  ``GET <homeserver>/_matrix/client/v3/account/whoami`` at the account's ``homeserver`` (else the
  channel's); without one moltir does not rotate it. The homeserver is the config's, so tests point it at
  a fake on loopback. A new token is a new device: OpenClaw's Matrix docs say its crypto store is per
  token, so an encrypted room needs the new device verified again.

* ``github``: a github.com token in the state dir's ``.env`` (``dotenv.GITHUB_TOKEN``, ``GH_TOKEN``... see
  :data:`GITHUB_VARS`;
  what the agent's ``gh``/``git`` and skills use). Validated with ``GET <api>/user`` at
  ``https://api.github.com``; stored like a ``.env`` provider key (the 0600 ``.env``, keyring copy as
  record; a restart, since the gateway reads ``.env`` at start). A GitHub token elsewhere (the config's
  ``env`` section, a unit's ``Environment=``) stays by hand.

  No release lets the config point Discord or Slack at another API base (Telegram has ``apiRoot``):
  ``MOLTIR_DISCORD_API`` / ``MOLTIR_SLACK_API`` (and ``MOLTIR_GITHUB_API``) in moltir's environment replace
  the base moltir itself uses, FOR TESTS ONLY (a fake on loopback); the gateway still talks to the real services.

Where the new value goes (``store``), per the capability table:

* ``keyring-ref``: the keyring holds it; the config key becomes moltir's exec SecretRef (the one the
  gateway token uses, entry ``credential:<install key>:<credential id>``), when the release accepts a
  SecretRef at that path (``telegram_token_secretref``: 2026.3.2; ``secret_refs`` for
  ``models.providers.*.apiKey``: 2026.2.26; ``chat_token_secretref`` for Discord and Slack: 2026.3.2);
* ``plaintext``: the new value in the 0600 config, the keyring copy as the record;
* ``dotenv``: the new value in the 0600 ``.env`` (a dotenv file has no references), keyring copy as record.

How the gateway re-reads it (``reload``): the release's in-process restart signal (it re-reads the config
and re-resolves SecretRefs) where one is honoured from another process, else a restart the way the gateway
runs. A ``.env`` value is read into the process environment at start, which an in-process restart keeps:
always a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from moltir.openclaw import credential_table as table

if TYPE_CHECKING:
    from moltir.openclaw.credentials import Credential
    from moltir.openclaw.install import Install

TELEGRAM_API = "https://api.telegram.org"
PUBLIC_BASE = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1",
               "openrouter": "https://openrouter.ai/api/v1"}
_TG_RE = re.compile(r"^channels\.telegram\.(?:accounts\.([^.]+)\.)?botToken$")
WATCH = "config file watch"
DISCORD_API = "https://discord.com/api/v10"
SLACK_API = "https://slack.com/api"
GITHUB_API = "https://api.github.com"
#: the .env names of a github.com token (gh's and GitHub's own tools); a GitHub Enterprise token
#: (GH_ENTERPRISE_TOKEN, ...) talks to another host: by hand
GITHUB_VARS = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "GITHUB_PAT", "GITHUB_PERSONAL_ACCESS_TOKEN"})
TEST_API_ENV = {"discord": "MOLTIR_DISCORD_API", "slack": "MOLTIR_SLACK_API",
                "github": "MOLTIR_GITHUB_API"}  # for tests only
_DISCORD_RE = re.compile(r"^channels\.discord\.(?:accounts\.([^.]+)\.)?token$")
_SLACK_RE = re.compile(r"^channels\.slack\.(?:accounts\.([^.]+)\.)?(botToken|userToken|appToken|signingSecret)$")
_SLACK_FAMILY = {"botToken": "slack", "userToken": "slack", "appToken": "slack-app",
                 "signingSecret": "slack-signing"}
_CHECKS = {"telegram": "Telegram getMe", "model": "GET models list", "discord": "Discord GET /users/@me",
           "slack": "Slack auth.test", "slack-app": "Slack apps.connections.open",
           "slack-signing": "its form only (32 hex characters; Slack has no API that checks a signing secret)",
           "matrix": "Matrix GET /_matrix/client/v3/account/whoami", "github": "GitHub GET /user"}
_MATRIX_RE = re.compile(r"^channels\.matrix\.(?:accounts\.([^.]+)\.)?accessToken$")
#: Matrix ``POST /logout`` with the old token ends that token's device only; ``/logout/all`` would also
#: end the new token's session (same user), so moltir never calls it.
MATRIX_REVOKE = "Matrix POST /_matrix/client/v3/logout with the OLD token (ends that device only)"
_MODEL_RE = re.compile(r"^models\.providers\.([^.]+)\.apiKey$")


@dataclass(frozen=True)
class Target:
    """One credential moltir can rotate, and how."""

    cred_id: str
    family: str  # telegram | model | discord | slack | slack-app | slack-signing | matrix | github
    path: tuple[str, ...]  # the config key path, or ("<VAR>",) for a .env variable
    store: str  # keyring-ref | plaintext | dotenv
    check_url: str  # getMe / models endpoint (without the credential)
    proxy: str | None  # Telegram: the HTTP(S) proxy the gateway uses
    provider: str
    reload: str  # the signal name, or "restart"
    base: str = ""  # the apiRoot (Telegram) or baseUrl (model) the check uses

    def describe(self) -> dict[str, Any]:
        where = {"keyring-ref": "OS keyring; the config points at it (exec SecretRef, provider moltir)",
                 "plaintext": ("the 0600 config (no SecretRef there: the release resolves none at this path, "
                               "or its release is unknown); keyring copy as record"),
                 "dotenv": "the 0600 .env (no references in a dotenv file); keyring copy as record"}[self.store]
        via = f" through proxy {self.proxy}" if self.proxy else ""
        what = _CHECKS[self.family]
        reload = ("restart the gateway the way it runs" if self.reload == "restart" else
                  "the gateway's config file watcher applies the edit" if self.reload == WATCH else
                  f"{self.reload} (in-process restart: re-reads the config, re-resolves SecretRefs)")
        at = f" at {self.check_url}{via}" if self.check_url else ""
        return {"validate": f"{what}{at}", "store": self.store, "store_where": where,
                "reload": reload}


def _get(data: Any, *path: str) -> Any:
    for p in path:
        data = data.get(p) if isinstance(data, Mapping) else None
    return data


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def telegram_endpoint(config: Mapping[str, Any], account: str | None) -> tuple[str, str | None]:
    """(``<apiRoot>/bot``-less base URL, proxy) the gateway uses for one Telegram account."""
    top = _get(config, "channels", "telegram")
    acc = _get(top, "accounts", account) if account else None
    root = _str(_get(acc, "apiRoot")) or _str(_get(top, "apiRoot")) or TELEGRAM_API
    proxy = _str(_get(acc, "proxy")) or _str(_get(top, "proxy"))
    return root.rstrip("/"), proxy


def model_base(config: Mapping[str, Any], cred: Credential) -> str | None:
    """The base URL whose ``/models`` the key is checked at; None when moltir cannot tell."""
    providers = _get(config, "models", "providers")
    providers = providers if isinstance(providers, Mapping) else {}
    m = _MODEL_RE.match(cred.id)
    if m:
        return _str(_get(providers, m.group(1), "baseUrl")) or PUBLIC_BASE.get(cred.provider)
    var = cred.key
    for entry in providers.values():
        key = _get(entry, "apiKey")
        names_var = key == f"${{{var}}}" or (isinstance(key, Mapping) and key.get("source") == "env"
                                              and key.get("id") == var)
        if names_var and _str(_get(entry, "baseUrl")):
            return _str(_get(entry, "baseUrl"))
    return _str(_get(providers, cred.provider, "baseUrl")) or PUBLIC_BASE.get(cred.provider)


def _top_token_resolved(config: Mapping[str, Any]) -> bool:
    """Does the release resolve a SecretRef at the top-level ``channels.telegram.botToken``? 2026.9.6's
    Telegram secret contract (dist/secret-contract-*.mjs, ``topLevelInheritedAccountActive``) resolves it
    only when there are no accounts or an enabled account inherits it (has no botToken / tokenFile of its
    own); yet the implicit default account still reads it, so a SecretRef there leaves that account
    "unresolved SecretRef" at start (seen on the real gateway). Then the value goes into the 0600 config."""
    accounts = _get(config, "channels", "telegram", "accounts")
    if not isinstance(accounts, Mapping) or not accounts:
        return True
    return any(isinstance(a, Mapping) and a.get("enabled") is not False and not a.get("botToken")
               and not a.get("tokenFile") for a in accounts.values())


def _chat_top_resolved(config: Mapping[str, Any], channel: str, key: str) -> bool:
    """Like :func:`_top_token_resolved` for Discord and Slack (their accounts inherit the channel's
    value the same way). Decision: the same rule, so that an account with its own value never meets an
    unresolved SecretRef at the top level; then the top-level value goes into the 0600 config."""
    accounts = _get(config, "channels", channel, "accounts")
    if not isinstance(accounts, Mapping) or not accounts:
        return True
    return any(isinstance(a, Mapping) and a.get("enabled") is not False and not a.get(key)
               for a in accounts.values())


def chat_api(install: Install, family: str) -> str:
    """The API base moltir uses for Discord or Slack (the public one; a test may replace it)."""
    channel = "discord" if family == "discord" else "slack"
    public = DISCORD_API if channel == "discord" else SLACK_API
    return (_str(install.env.get(TEST_API_ENV[channel])) or public).rstrip("/")


def _chat_target(install: Install, config: Mapping[str, Any], cred: Credential, sig: str) -> Target | None:
    d, sl = _DISCORD_RE.match(cred.id), _SLACK_RE.match(cred.id)
    if cred.file != str(install.config_path) or not (d or sl):
        return None
    channel, account, key = ("discord", d.group(1), "token") if d else ("slack", sl.group(1), sl.group(2))  # type: ignore[union-attr]
    family = "discord" if d else _SLACK_FAMILY[key]
    top = _get(config, "channels", channel)
    proxy = None
    if d:  # Discord's REST lookups go through the channel's (or the account's) proxy
        proxy = (_str(_get(top, "accounts", account, "proxy")) if account else None) or _str(_get(top, "proxy"))
    store = ("keyring-ref" if install.caps.chat_token_secretref
             and (account or _chat_top_resolved(config, channel, key)) else "plaintext")
    api = chat_api(install, family)
    check = {"discord": f"{api}/users/@me", "slack": f"{api}/auth.test", "slack-app": f"{api}/apps.connections.open",
             "slack-signing": ""}[family]
    return Target(cred.id, family, tuple(cred.id.split(".")), store, check, proxy, channel,
                  _reload(config, store, sig), api)


def _matrix_target(install: Install, config: Mapping[str, Any], cred: Credential, sig: str) -> Target | None:
    m = _MATRIX_RE.match(cred.id)
    if cred.file != str(install.config_path) or not m:
        return None
    top = _get(config, "channels", "matrix")
    home = (_str(_get(top, "accounts", m.group(1), "homeserver")) if m.group(1) else None) or \
        _str(_get(top, "homeserver"))
    if home is None:
        return None
    store = ("keyring-ref" if install.caps.matrix_token_secretref
             and (m.group(1) or _chat_top_resolved(config, "matrix", "accessToken")) else "plaintext")
    home = home.rstrip("/")
    return Target(cred.id, "matrix", tuple(cred.id.split(".")), store, f"{home}/_matrix/client/v3/account/whoami",
                  None, "matrix", _reload(config, store, sig), home)


def revocation(t: Target) -> dict[str, object]:
    """Who revokes the old value of ``t``: :func:`credential_table.revocation` of its provider, except
    the Slack app-level token and signing secret (no API: the app's settings page, a person)."""
    if t.family == "slack-app":
        return {"api": False, "by": "person", "how": "a person: api.slack.com/apps > the app > Basic Information > "
                                                     "App-Level Tokens > Revoke"}
    if t.family == "slack-signing":
        return {"api": False, "by": "person", "how": "a person: api.slack.com/apps > the app > Basic Information > "
                                                     "App Credentials > Signing Secret > Regenerate"}
    if t.family == "matrix":
        return {"api": True, "by": "api", "how": MATRIX_REVOKE}
    return table.revocation(t.provider)


def _reload(config: Mapping[str, Any], store: str, sig: str) -> str:
    """keyring-ref: the config text does not change once it holds the SecretRef, so only an in-process
    restart re-resolves it. plaintext: the config file watcher (2026.1.29 dist/gateway/config-reload.js:
    ``channels.<id>`` restarts that channel, ``models`` needs no action: the next turn reads the new config),
    unless ``gateway.reload.mode`` is "off"."""
    if store == "plaintext" and _get(config, "gateway", "reload", "mode") != "off":
        return WATCH
    return sig


def target(install: Install, config: Mapping[str, Any], cred: Credential) -> Target | None:
    """How moltir rotates ``cred``; None when ``moltir rotate`` does not handle it."""
    caps = install.caps
    sig = caps.restart_signal(config) or "restart"
    tg = _TG_RE.match(cred.id)
    if tg and cred.file == str(install.config_path):
        root, proxy = telegram_endpoint(config, tg.group(1))
        store = ("keyring-ref" if caps.telegram_token_secretref and (tg.group(1) or _top_token_resolved(config))
                 else "plaintext")
        return Target(cred.id, "telegram", tuple(cred.id.split(".")), store, f"{root}/bot<token>/getMe", proxy,
                      "telegram", _reload(config, store, sig), root)
    chat = _chat_target(install, config, cred, sig) or _matrix_target(install, config, cred, sig)
    if chat is not None:
        return chat
    model = _MODEL_RE.match(cred.id)
    if model and cred.file == str(install.config_path):
        base = model_base(config, cred)
        if base is None:
            return None
        store = "keyring-ref" if caps.secret_refs else "plaintext"
        return Target(cred.id, "model", tuple(cred.id.split(".")), store, f"{base.rstrip('/')}/models", None,
                      cred.provider, _reload(config, store, sig), base)
    if cred.id.startswith("dotenv.") and cred.key in GITHUB_VARS:
        api = (_str(install.env.get(TEST_API_ENV["github"])) or GITHUB_API).rstrip("/")
        return Target(cred.id, "github", (cred.key,), "dotenv", f"{api}/user", None, "github", "restart", api)
    if cred.id.startswith("dotenv.") and cred.kind == "api_key" and cred.provider in PUBLIC_BASE:
        base = model_base(config, cred)
        if base is None:
            return None
        return Target(cred.id, "model", (cred.key,), "dotenv", f"{base.rstrip('/')}/models", None, cred.provider,
                      "restart", base)
    return None


def by_hand(cred: Credential) -> str:
    """What to do for a credential ``moltir rotate`` does not handle."""
    if cred.kind == "gateway_token":
        return "moltir contain (or moltir drill) rotates it: token.rotate"
    how = table.revocation(cred.provider)["how"]
    return f"by hand: a new one from the issuer ({how}), then into {cred.file} at {cred.key}"
