"""After ``moltir rotate``: is the OLD credential refused by its issuer yet? (``--revoke-old``)

Telegram bot tokens are revoked by a person only (BotFather ``/revoke``; that also issues the new token).
moltir asks ``getMe`` with the old token: refused (401) proves the revocation. With ``--revoke-old`` it
prints the exact steps and polls until the old token is refused or ``timeout_s`` passes (``--no-wait``:
one check). Providers with a revocation API (OpenAI, Anthropic, OpenRouter, Slack, ...): moltir does not
call those APIs yet; it says how to revoke. The old value stays in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from moltir.openclaw import provider_check

POLL_S = 5.0

TELEGRAM_STEPS = (
    "revoke the old bot token (only a person can):",
    "  1. in Telegram, open a chat with @BotFather",
    "  2. send /mybots, choose the bot, then API Token > Revoke current token",
    "     (or send /revoke and choose the bot)",
    "  3. BotFather answers with a NEW token: if it differs from the one you just gave moltir, run",
    "     'moltir rotate CREDENTIAL-ID --from-stdin' again with it",
)


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
