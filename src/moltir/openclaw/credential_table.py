"""What counts as a credential, what kind it is, and who can revoke it: data, no I/O.

Config keys (checked against the package): 2026.9.6's ``docs/reference/secretref-credential-surface.md``
and ``docs/reference/secretref-user-supplied-credentials-matrix.json`` list every credential field of
``openclaw.json`` (``gateway.auth.token``/``password``, ``gateway.remote.token``/``password``,
``channels.telegram[.accounts.*].botToken``/``webhookSecret``, ``channels.discord[.accounts.*].token``,
``channels.slack[.accounts.*].botToken``/``appToken``/``userToken``/``signingSecret``,
``channels.matrix.accessToken``/``password``, ``models.providers.*.apiKey``/``headers.*``,
``plugins.entries.*.config...apiKey``, ``skills.entries.*.apiKey`` ...) and the "unsupported" (not
SecretRef-able) ones: ``hooks.token``, ``hooks.gmail.pushToken``, Discord ``threadBindings.webhookToken``,
WhatsApp ``creds.json``. Rather than a list per release, one key-name rule finds them all (every field
of the matrix ends in one of :data:`SECRET_KEY_RE`'s words); a ``...File`` sibling (Telegram
``tokenFile``) names a file holding the secret. Older releases (2026.1.29) use a subset of the same
names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

# a key whose string (or SecretRef) value is a credential
SECRET_KEY_RE: Final = re.compile(
    r"(token|secret|password|passwd|passphrase|api[_-]?key|private[_-]?key(pem)?|authtag|encryptkey|"
    r"authorization|serviceaccount|cookie)$", re.IGNORECASE)
# a key naming a file that holds a credential (Telegram ``tokenFile``)
SECRET_FILE_KEY_RE: Final = re.compile(r"^(token|password|secret|apikey|key)File$", re.IGNORECASE)
# keys of auth stores (auth-profiles.json ``profiles.*``) that hold a secret under a plain name
STORE_SECRET_KEYS: Final = frozenset({"key", "access", "refresh", "token", "apiKey"})
# subtrees that are not credentials even when a key matches (the config's own bookkeeping)
SKIP_TOP: Final = frozenset({"meta", "wizard", "update", "logging", "ui"})

_KINDS: Final[Mapping[str, str]] = {
    "gateway.auth.token": "gateway_token", "gateway.auth.password": "gateway_password",
    "gateway.remote.token": "gateway_remote_token", "gateway.remote.password": "gateway_remote_password",
    "hooks.token": "hooks_token", "hooks.gmail.pushToken": "hooks_push_token",
}


# auth-profiles.json / auth_profile_store names (docs/auth-credential-semantics.md: api_key, token, oauth)
_STORE_KINDS: Final[Mapping[str, str]] = {"key": "api_key", "access": "oauth_access_token",
                                          "refresh": "oauth_refresh_token"}
_BOT_CHANNELS: Final = frozenset({"telegram", "discord", "mattermost", "zalo"})


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()


def kind_of(path: str, key: str) -> str:
    """``gateway_token``, ``bot_token``, ``api_key``, ``signing_secret``, ... for a key path."""
    if path in _KINDS:
        return _KINDS[path]
    if key in _STORE_KINDS:
        return _STORE_KINDS[key]
    parts = path.split(".")
    if parts[0] == "channels" and len(parts) > 1 and parts[1] in _BOT_CHANNELS and key in ("token", "botToken"):
        return "bot_token"  # Telegram's and Discord's ``token`` / ``tokenFile`` hold the bot's token
    if path.startswith(("models.providers.", "env.")) and key.lower().replace("_", "").endswith("apikey"):
        return "api_key"
    if ".headers." in f".{path}.":
        return "http_header"
    if key.isupper():  # an environment variable name: OPENAI_API_KEY -> api_key
        for word in ("API_KEY", "BOT_TOKEN", "APP_TOKEN", "TOKEN", "PASSWORD", "SECRET"):
            if key.endswith(word):
                return word.lower()
        return "secret"
    return _snake(key)


# provider -> (a revocation API exists?, how to revoke). None: unknown.
# Checked 2026-12-07 against each provider's API reference (docs/credentials.md cites them):
# Slack auth.revoke revokes the token it is called with; Matrix POST /_matrix/client/v3/logout ends the
# device of the token it is called with (moltir's choice after a rotation), POST /_matrix/client/v3/logout/all
# ends every access token of the user; OpenRouter DELETE /api/v1/keys/{hash} needs a management
# key; OpenAI's admin API deletes project keys (DELETE /v1/organization/projects/{id}/api_keys/{id});
# Anthropic's Admin API cannot delete a key, only set it inactive or archived; GitHub
# POST /credentials/revoke takes classic and fine-grained personal access tokens, unauthenticated.
# Telegram (BotFather /revoke), Discord (Developer Portal) and WhatsApp (Linked devices) offer none.
REVOCATION: Final[Mapping[str, tuple[bool | None, str]]] = {
    "openclaw": (False, "local to this gateway: rotate it (moltir contain rotates the gateway token)"),
    "telegram": (False, "a person: BotFather /revoke, then the new token into the config"),
    "discord": (False, "a person: Developer Portal > Bot > Reset Token"),
    "slack": (True, "Slack API auth.revoke (bot and user tokens); signing secret: app settings"),
    "matrix": (True, "Matrix client API POST /logout with the old token (that device; /logout/all ends every "
                     "session of the user, the new one too)"),
    "whatsapp": (False, "a person: unlink the device in WhatsApp (Linked devices), then relink"),
    "openai": (True, "OpenAI admin API: DELETE the project key (an admin key is needed), or the dashboard"),
    "anthropic": (True, "Anthropic Admin API: set the key inactive or archived (no delete), or the console"),
    "openrouter": (True, "OpenRouter: DELETE /api/v1/keys/{hash} with a management key"),
    "github": (True, "GitHub POST /credentials/revoke (personal access tokens; no login needed)"),
}

_ENV_PROVIDERS: Final = (("OPENAI", "openai"), ("ANTHROPIC", "anthropic"), ("OPENROUTER", "openrouter"),
                         ("TELEGRAM", "telegram"), ("DISCORD", "discord"), ("SLACK", "slack"),
                         ("MATRIX", "matrix"), ("GITHUB", "github"), ("GH_", "github"),
                         ("OPENCLAW_GATEWAY", "openclaw"), ("CLAWDBOT_GATEWAY", "openclaw"))
_HOSTS: Final = (("openai.com", "openai"), ("anthropic.com", "anthropic"), ("openrouter.ai", "openrouter"),
                 ("github", "github"))


def env_provider(var: str) -> str | None:
    """``OPENAI_API_KEY`` -> ``openai``; None for a name that names no provider moltir knows."""
    if var.isupper():
        for prefix, provider in _ENV_PROVIDERS:
            if var.startswith(prefix):
                return provider
    return None


def provider_of(path: str, key: str, hint: str = "") -> str:
    """Who issued the credential: a channel name, a model provider, ``openclaw`` (local), ...

    ``hint`` is a model provider's ``baseUrl`` (or its id) when known."""
    parts = path.split(".")
    if parts[0] in ("gateway", "hooks"):
        return "openclaw"
    if parts[0] == "channels" and len(parts) > 1:
        return parts[1]
    by_var = env_provider(key)
    if by_var:
        return by_var
    if parts[0] == "models" and len(parts) > 2:
        low = f"{parts[2]} {hint}".lower()
        for needle, provider in (*_HOSTS, ("openrouter", "openrouter"), ("openai", "openai"),
                                 ("anthropic", "anthropic")):
            if needle in low:
                return provider
        return f"model:{parts[2]}"
    if parts[0] == "plugins" and len(parts) > 2:
        return f"plugin:{parts[2]}"
    return "unknown"


# OpenClaw writes a new exec-approvals socket token when it loads approvals without one (2026.1.29
# dist/infra/exec-approvals.js ensureExecApprovals; 2026.9.6 dist/exec-approvals-config-*.mjs generateToken)
EXEC_APPROVAL_REVOKE = ("revoke: stop the gateway, delete `socket.token` from exec-approvals.json (or the "
                        "exec_approvals_config row's raw_json from 2026.8.1; deleting the whole file also drops "
                        "the approvals), start it: OpenClaw generates a new token")


def revocation(provider: str, kind: str = "") -> dict[str, object]:
    """``{"api": True | False | None, "by": "api" | "person" | "local" | "unknown", "how": ...}``."""
    if kind == "exec_approval_token":
        return {"api": False, "by": "local", "how": EXEC_APPROVAL_REVOKE}
    api, how = REVOCATION.get(provider, (None, "unknown: see the provider's documentation"))
    by = "local" if provider == "openclaw" else {True: "api", False: "person", None: "unknown"}[api]
    return {"api": api, "by": by, "how": how}
