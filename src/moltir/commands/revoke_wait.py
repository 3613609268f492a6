"""After ``moltir rotate``: revoke the OLD credential where its issuer has an API for it, and check
whether the issuer refuses it yet (``--revoke-old``).

* An API moltir calls (:mod:`moltir.openclaw.provider_revoke`): Slack bot and user tokens
  (``auth.revoke`` with the old token), OpenRouter keys (``DELETE /keys/<hash>`` with a management key)
  and OpenAI project keys (the Administration API's key delete with an admin key); the management or
  admin key comes from stdin's second line or a hidden prompt, never argv, and is checked before anything
  changes; Matrix access tokens (``POST /logout`` with the old token: that device only). Then the old
  value is asked once more (OpenRouter ``GET /key``, OpenAI ``GET /models``, Matrix ``whoami``).
* Only a person can revoke: Telegram bot tokens (BotFather ``/revoke``), Discord bot tokens (Developer
  Portal > Reset Token), the Slack app-level token and signing secret (the app's settings page). moltir
  prints the exact steps and polls the issuer with the old value (Telegram ``getMe``, Discord
  ``GET /users/@me``, Slack ``apps.connections.open``) until it is refused or ``timeout_s`` passes
  (``--no-wait``: one check). A signing secret cannot be asked: the steps only.
* Other providers with an API (Anthropic, GitHub): moltir does not call those yet; it says how
  to revoke.

The old value and the management key stay in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from moltir.openclaw import provider_check, provider_revoke

if TYPE_CHECKING:
    from moltir.openclaw.rotation_table import Target

POLL_S = 5.0

TELEGRAM_STEPS = (
    "revoke the old bot token (only a person can):",
    "  1. in Telegram, open a chat with @BotFather",
    "  2. send /mybots, choose the bot, then API Token > Revoke current token",
    "     (or send /revoke and choose the bot)",
    "  3. BotFather answers with a NEW token: if it differs from the one you just gave moltir, run",
    "     'moltir rotate CREDENTIAL-ID --from-stdin' again with it",
)
DISCORD_STEPS = (
    "revoke the old bot token (only a person can):",
    "  1. open https://discord.com/developers/applications and choose the bot's application",
    "  2. Bot > Reset Token: Discord ends the old token at once and shows a NEW one",
    "  3. if it differs from the one you just gave moltir, run",
    "     'moltir rotate CREDENTIAL-ID --from-stdin' again with it",
)
SLACK_APP_STEPS = (
    "revoke the old app-level token (only a person can; Slack has no API for it):",
    "  1. open https://api.slack.com/apps and choose the app",
    "  2. Basic Information > App-Level Tokens: Revoke the old token (keep the one you just gave moltir)",
)
SLACK_SIGNING_STEPS = (
    "retire the old signing secret (only a person can; Slack has no API for it and cannot be asked):",
    "  1. open https://api.slack.com/apps and choose the app",
    "  2. Basic Information > App Credentials > Signing Secret: Regenerate ends the old one; if the new",
    "     secret differs from the one you just gave moltir, run 'moltir rotate CREDENTIAL-ID' again with it",
)
STEPS = {"telegram": TELEGRAM_STEPS, "discord": DISCORD_STEPS, "slack-app": SLACK_APP_STEPS,
         "slack-signing": SLACK_SIGNING_STEPS}
MANAGEMENT_KEY = {"openrouter": "an OpenRouter management key (openrouter.ai/settings/provisioning-keys)",
                  "openai": "an OpenAI admin key (platform.openai.com/settings/organization/admin-keys)"}


@dataclass(frozen=True)
class Revocation:
    refused: bool  # the issuer refused the old value: revocation proved
    detail: str


def old_refused(check: Callable[[], provider_check.Check], *, wait: bool, timeout_s: float,
                poll_s: float = POLL_S) -> Revocation:
    """Ask ``check`` (the old value at its issuer) until it is refused, or once when not ``wait``."""
    deadline = time.monotonic() + timeout_s
    while True:
        c = check()
        if c.verdict == provider_check.REFUSED:
            return Revocation(True, f"the old value is refused by its issuer ({c.detail})")
        if not wait or time.monotonic() >= deadline:
            what = "still accepted" if c.verdict == provider_check.GOOD else "could not be checked"
            return Revocation(False, f"the old value is {what} ({c.detail})")
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def telegram_check(api_root: str, old: str, env: Mapping[str, str],
                   proxy: str | None) -> Callable[[], provider_check.Check]:
    return lambda: provider_check.telegram(api_root, old, env, proxy)


def management_key_needed(t: Target) -> str | None:
    """What ``--revoke-old`` needs besides the old value (an OpenRouter management key, an OpenAI admin
    key), or None."""
    return MANAGEMENT_KEY.get(t.provider) if t.family == "model" else None


def has_api(t: Target) -> bool:
    """Does moltir revoke the old value of ``t`` through its issuer's API?"""
    return t.family in ("slack", "matrix", "github") or (t.family == "model" and t.provider in MANAGEMENT_KEY)


def check_management_key(t: Target, management: str, env: Mapping[str, str]) -> provider_check.Check:
    """Before anything changes: the management (admin) key must be accepted by the issuer."""
    if t.provider == "openai":
        return provider_revoke.openai_admin_ok(t.base, management, env)
    return provider_revoke.openrouter_management_ok(t.base, management, env)


def revoke_by_api(t: Target, old: str, env: Mapping[str, str], management: str | None,
                  new: str = "") -> provider_revoke.Outcome:
    if t.family == "slack":
        return provider_revoke.slack_revoke(t.base, old, env)
    if t.family == "matrix":
        return provider_revoke.matrix_logout(t.base, old, new, env)
    if t.family == "github":
        return provider_revoke.github_revoke(t.base, old, env)
    if management is None:
        return provider_revoke.Outcome(False, "no management key was given: delete the old key by hand")
    if t.provider == "openai":
        return provider_revoke.openai_delete(t.base, old, management, env)
    return provider_revoke.openrouter_delete(t.base, old, management, env)


def old_check(t: Target, old: str, env: Mapping[str, str]) -> Callable[[], provider_check.Check] | None:
    """How to ask the issuer about the old value; None where it cannot be asked (a signing secret, a
    model key whose models list is public or that moltir did not revoke)."""
    if t.family == "telegram":
        return telegram_check(t.base, old, env, t.proxy)
    if t.family == "discord":
        return lambda: provider_check.discord(t.base, old, env, t.proxy)
    if t.family in ("slack", "slack-app"):
        method = "auth.test" if t.family == "slack" else "apps.connections.open"
        return lambda: provider_check.slack(t.base, method, old, env)
    if t.family == "matrix":
        return lambda: provider_check.matrix_whoami(t.base, old, env)[0]
    if t.family == "github":  # revoked asynchronously: polled until GET /user refuses it
        return lambda: provider_check.github_user(t.base, old, env)
    if t.family == "model" and t.provider == "openrouter":
        return lambda: provider_revoke.openrouter_key(t.base, old, env)
    if t.family == "model" and t.provider == "openai":  # OpenAI's models list needs a key: 401 once deleted
        return lambda: provider_check.model_key(t.base, old, t.provider, env)
    return None
