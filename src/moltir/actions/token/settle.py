"""When the running gateway does not take the new token: roll back to the previous one, or roll
forward when the gateway takes the new one late."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from moltir import keystore
from moltir.actions.base import StepContext
from moltir.actions.token.edits import target_edits, write_config
from moltir.actions.token.names import SETTLED_KEY
from moltir.actions.token.routes import reapply, reload_route
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error
from moltir.openclaw import gateway_http, json5edit
from moltir.redaction import fingerprint


@dataclass
class Rollback:
    """What putting the previous token back needs. Lives in ``ctx.shared`` only (holds secrets)."""

    mode: str
    entry: str
    old_token: str | None = field(repr=False)
    old_keyring_value: str | None = field(repr=False)
    previous_auth_token: Any = field(repr=False)
    previous_auth_mode: Any
    previous_provider: Any
    port: int
    gateway_pids: list[int]
    previous_password: Any = field(default=None, repr=False)
    command: str = ""
    backend: str = ""


ROLLBACK_MIN_WAIT_S = 60.0  # how long the previous token may take to be accepted again
SETTLE_S = 15.0  # then how long both tokens are watched: a slow reload may still land the new one


def roll_forward_if_late(ctx: StepContext, rb: Rollback, new: str) -> bool:
    """After a rollback, watch the gateway for ``SETTLE_S``: when a reload that was still running lands
    the NEW token after all, put the new token back (keyring, config) and keep it. True if it did."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        if gateway_http.token_status(rb.port, new) == gateway_http.ACCEPTED:
            keystore.store(keystore.SERVICE, rb.entry, new)
            write_config(ctx, target_edits(ctx.install, rb.mode, new, rb.command, rb.backend,
                                           drop_password=rb.previous_password is not None))
            ctx.shared["gateway_token"] = new
            ctx.event("token.rolled_forward", token_fingerprint=fingerprint(new))
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def settle_after_failure(ctx: StepContext, rb: Rollback | None, new: str | None, what: str) -> NoReturn:
    """The gateway did not take the new token in time: roll back, or forward if it takes it late.

    (1) Put the previous token back (keyring, config) and re-apply; (2) watch both tokens for
    ``SETTLE_S``: a reload that was still running (and may swallow the rollback's trigger) can land
    the NEW token after all, and then the new token is put back and kept (rolled forward), so the
    keyring always holds the token the gateway accepts; (3) if it accepts neither, the previous
    token stays on record and the message says to restart the gateway."""
    ctx.shared.pop("gateway_token", None)
    ctx.shared[SETTLED_KEY] = True
    if rb is None:
        raise MoltirError(f"{what}, and there is nothing to roll back to", hint="restart the gateway; the "
                          "keyring holds the token to use", exit_code=EXIT_STEP_FAILED)
    ok, how = rollback(ctx, rb, timeout_s=ROLLBACK_MIN_WAIT_S, new_token=new)
    if new is not None and roll_forward_if_late(ctx, rb, new):
        raise verify_error(f"{what}; it took the new token {fingerprint(new)} late, after the rollback "
                           "had started, so the new token was kept (rolled forward)",
                           "check the gateway's log for slow reloads")
    if ok and rb.old_token is not None:
        ok = gateway_http.token_status(rb.port, rb.old_token) == gateway_http.ACCEPTED
    if ok:
        raise verify_error(f"{what}; {how}", "see the gateway's log for why it did not take the new token")
    raise MoltirError(f"{what}, and {how}", hint="restart the gateway: the keyring and the config hold the "
                      "previous token again", exit_code=EXIT_STEP_FAILED)


def rollback(ctx: StepContext, rb: Rollback, *, timeout_s: float, new_token: str | None = None) -> tuple[bool, str]:
    """Put the previous token back (keyring, config), re-apply, and check the gateway takes it.

    When moltir never knew the previous value (a ``store``/``env`` SecretRef), the previous
    config is put back and success means the gateway stopped accepting the new token."""
    prev_is_ref = isinstance(rb.previous_auth_token, Mapping) or (
        isinstance(rb.previous_auth_token, str) and rb.previous_auth_token.startswith("$"))
    if rb.old_token is None and not prev_is_ref:
        return False, "the previous token is not known to moltir, so it cannot be put back"
    if rb.old_keyring_value is not None:
        keystore.store(keystore.SERVICE, rb.entry, rb.old_keyring_value)
    elif rb.old_token is not None:
        keystore.store(keystore.SERVICE, rb.entry, rb.old_token)
    else:
        keystore.delete(keystore.SERVICE, rb.entry)
    edits: dict[tuple[str, ...], Any] = {
        ("gateway", "auth", "token"): rb.previous_auth_token if rb.previous_auth_token is not None
        else json5edit.DELETE,
        ("gateway", "auth", "mode"): rb.previous_auth_mode if rb.previous_auth_mode is not None
        else json5edit.DELETE,
    }
    if rb.previous_password is not None:
        edits[("gateway", "auth", "password")] = rb.previous_password
    if rb.mode == "keyring-ref":
        edits[("secrets", "providers", keystore.PROVIDER_ALIAS)] = (
            rb.previous_provider if rb.previous_provider is not None else json5edit.DELETE)
    write_config(ctx, edits)
    route, sig = reload_route(ctx.install, rb.mode, ctx.install.read_config())
    if route == "restart" or prev_is_ref or rb.mode == "keyring-ref":
        try:
            reapply(ctx, route, sig, rb.gateway_pids, rb.old_token, timeout_s)
        except MoltirError as exc:
            return False, f"rollback could not restart the gateway: {exc.message}"
    if rb.old_token is None:
        deadline = time.monotonic() + timeout_s
        status = gateway_http.token_status(rb.port, new_token) if new_token else gateway_http.DOWN
        while new_token and status != gateway_http.REFUSED and time.monotonic() < deadline:
            time.sleep(0.2)
            status = gateway_http.token_status(rb.port, new_token)
        ctx.event("token.rolled_back", accepted=None, new_token_status=status)
        if status == gateway_http.REFUSED:
            return True, ("rolled back to the previous SecretRef (its token is not known to moltir, so "
                          "check that your clients still get in)")
        return False, f"rollback did not take: the new token gets HTTP {status or 'no answer'}"
    status = gateway_http.wait_accepted(rb.port, rb.old_token, timeout_s=timeout_s)
    ctx.event("token.rolled_back", accepted=status == gateway_http.ACCEPTED, status=status,
              token_fingerprint=fingerprint(rb.old_token))
    if status == gateway_http.ACCEPTED:
        return True, f"rolled back: the gateway accepts the previous token {fingerprint(rb.old_token)} again"
    return False, f"rollback did not take: the previous token gets HTTP {status or 'no answer'}"
