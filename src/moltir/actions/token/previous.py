"""The token a rotation replaced, for a later run (restore) to prove it refused: read back from the
case's pre-image, or kept in the keyring as ``<entry>:previous`` (never in a file)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from moltir import keystore
from moltir.actions.base import StepContext
from moltir.actions.token.names import PREVIOUS_SUFFIX
from moltir.actions.token.reading import config_value
from moltir.errors import MoltirError
from moltir.redaction import fingerprint, register


def keep_previous(ctx: StepContext, entry: str, old: str) -> bool:
    """Whether to keep ``old`` as ``<entry>:previous``: not when this case's record names another
    previous token and the keyring already holds that one (a second rotation in the same case, e.g.
    a run resumed after a crash mid-rotation, must not replace the token restore has to prove refused)."""
    record = ctx.case.restore_section("token")
    previous = record.get("previous") if isinstance(record, Mapping) else None
    want = previous.get("token_fingerprint") if isinstance(previous, Mapping) else None
    if not want or fingerprint(old) == want:
        return True
    try:
        kept = keystore.read(keystore.SERVICE, entry + PREVIOUS_SUFFIX)
    except MoltirError:
        return True
    return not (kept and fingerprint(kept) == want)


def old_token_from_case(ctx: StepContext) -> str | None:
    """The previous token, for a later run (restore) to prove it refused.

    The case keeps the config's pre-incident bytes in ``preimage/`` as evidence; when the
    previous token was a plaintext ``gateway.auth.token`` there, it is read back from them, and
    used only if its fingerprint is the one token.rotate recorded.
    """
    record = ctx.case.restore_section("token")
    if not isinstance(record, Mapping):
        return None
    previous = record.get("previous")
    want = previous.get("token_fingerprint") if isinstance(previous, Mapping) else None
    rel = record.get("preimage")
    if not want:
        return None
    value: Any = None
    if isinstance(rel, str):
        try:
            text = (ctx.case.dir / rel).read_text(encoding="utf-8-sig")
            from moltir.openclaw import parse_config_text

            value = config_value(parse_config_text(text, ctx.case.dir / rel), "gateway", "auth", "token")
        except (OSError, MoltirError):
            value = None
    if isinstance(value, str) and value and fingerprint(value) == want:
        register(value)
        return value
    # the previous token lived in the keyring (an earlier drill) or the environment: token.rotate kept it
    # in the keyring as <entry>:previous
    with contextlib.suppress(MoltirError):
        kept = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install) + PREVIOUS_SUFFIX)
        if kept and fingerprint(kept) == want:
            ctx.shared[PREVIOUS_SUFFIX] = kept
            return kept
    return None
