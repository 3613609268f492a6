"""The names the token steps share: modes, the ``ctx.shared`` keys (in memory only), the keyring
entry suffixes."""

from __future__ import annotations

from moltir.openclaw.gateway_auth import ENV_TOKEN_VARS as ENV_TOKEN_VARS

MODES = ("auto", "keyring-ref", "plaintext")

PLACEHOLDER = "<new token>"
ROLLBACK_KEY = "token_rollback"  # ctx.shared: what a rollback needs (in memory only)
SETTLED_KEY = "token_settled"  # ctx.shared: a rollback (or roll-forward) already ran in this run
SIGNALLED_KEY = "token_signalled"  # ctx.shared: the running gateway was told to take the new token
VALIDATION_KEY = "token_validation"  # ctx.shared: (verdict text, warning or None) of the last config write
STAGING_SUFFIX = ":next"
# The token a rotation replaced, kept IN THE KEYRING (never in a file) when the config's pre-image does
# not hold it (it came from the keyring or the environment), so that a later `moltir restore` can still
# prove it refused; token.verify removes it once it has.
PREVIOUS_SUFFIX = ":previous"
PREPARED_KEY = "token.prepared"  # ctx.shared: a commit.Prepared from Rotate.prepare, taken by Rotate.apply
