"""``token.rotate`` and ``token.verify``: a new gateway token, kept in the OS keyring, proved live.

Where the token goes (``mode``)
    ``keyring-ref`` (auto on openclaw 2026.9.x, which has SecretRefs): the keyring holds the
    only copy; the config says ``gateway.auth.token = {source: "exec", provider: "moltir", id:
    "gateway-token:<install key>"}`` and ``secrets.providers.moltir`` runs moltir's helper
    (:mod:`moltir.secret_helper`, through the launcher :func:`moltir.keystore.install_helper_wrapper`).
    ``plaintext`` (auto on openclaw 2026.1.x and clawdbot, which read the token only from the
    config): the value goes into the 0600 config and the keyring copy is the record (the source
    of truth moltir and the operator read it from).

Order (each step only when the previous one held)
    keyring preflight -> generate (``secrets.token_hex(32)``, registered as a secret at once)
    -> store in a staging entry and read it back -> boot-safety check (keyring-ref: the helper,
    run the way the gateway runs it, must return that staging token) -> ``restore.json``
    section ``token`` (shapes and fingerprints of what was there) -> commit the keyring entry
    -> edit the config (comment-preserving; the exact old bytes go to ``preimage/``) -> rewrite
    OpenClaw's own config backups (``.bak*``, ``.last-good``, ``.clobbered.*``, copied to
    ``preimage/backups/`` first) so none can bring the old token back -> report what could
    override or leak it (``<state>/.env``, service environment, ``hooks.token``,
    ``gateway.remote.token``) -> apply it to a running gateway -> list (or revoke) paired devices.

How a running gateway picks it up (``apply: "auto"``; pinned by tests)
    keyring-ref: SIGUSR2 to every gateway process of the install (2026.9.x: in-process restart,
    same pid, re-resolves SecretRefs; the CLI's ``secrets reload`` would need the old token on
    its argv). plaintext: the config file watcher (2026.9.x hot-applies ``gateway.auth.token``;
    2026.1.x restarts in-process on it). Then the new token must be accepted over HTTP within
    ``timeout_s``; if it is not, ``on_apply_failure: "rollback"`` (the drill) puts the old token
    back in the keyring and config and re-applies, so the gateway is never left without a token
    the operator holds; ``"keep"`` (contain) leaves the new token in place and says to restart.

Nothing here writes a token to the journal, the console or a child's argv: results carry
fingerprints; CLI children get the token in ``OPENCLAW_GATEWAY_TOKEN``.

Modules
    :mod:`.rotate` and :mod:`.verify` (the two actions); :mod:`.reading` (the mode, the token in use, the
    gateways), :mod:`.edits` (the config edits), :mod:`.backups` (OpenClaw's config copies),
    :mod:`.leaks` (what could override or leak it), :mod:`.routes` (how a running gateway takes it),
    :mod:`.settle` (rollback and roll-forward), :mod:`.devices` (paired devices), :mod:`.previous` (the
    replaced token, for restore), :mod:`.names` (shared keys). The names below are re-exported here.
"""

from moltir.actions.token.backups import config_backups
from moltir.actions.token.devices import list_devices, revoke_devices
from moltir.actions.token.edits import plan_diff, target_edits, write_config
from moltir.actions.token.names import (
    ENV_TOKEN_VARS,
    MODES,
    PLACEHOLDER,
    PREPARED_KEY,
    PREVIOUS_SUFFIX,
    ROLLBACK_KEY,
    SETTLED_KEY,
    SIGNALLED_KEY,
    STAGING_SUFFIX,
    VALIDATION_KEY,
)
from moltir.actions.token.reading import (
    auth_holds,
    find_gateways,
    gateway_port,
    old_token,
    read_env_file,
    resolve_mode,
)
from moltir.actions.token.rotate import Rotate
from moltir.actions.token.routes import reload_route
from moltir.actions.token.settle import (
    ROLLBACK_MIN_WAIT_S,
    SETTLE_S,
    Rollback,
    roll_forward_if_late,
    rollback,
    settle_after_failure,
)
from moltir.actions.token.verify import Verify

__all__ = [
    "ENV_TOKEN_VARS", "MODES", "PLACEHOLDER", "PREPARED_KEY", "PREVIOUS_SUFFIX", "ROLLBACK_KEY", "ROLLBACK_MIN_WAIT_S",
    "SETTLED_KEY", "SETTLE_S", "SIGNALLED_KEY", "STAGING_SUFFIX", "VALIDATION_KEY",
    "Rollback", "Rotate", "Verify",
    "auth_holds", "config_backups", "find_gateways", "gateway_port", "list_devices", "old_token", "plan_diff",
    "read_env_file", "reload_route", "resolve_mode", "revoke_devices", "roll_forward_if_late", "rollback",
    "settle_after_failure", "target_edits", "write_config",
]
