"""The OS keyring, as moltir uses it for the gateway token; and the secret helper's wiring.

Where the token lives
    service ``moltir``, entry ``gateway-token:<install key>`` (:func:`entry_name`), where the
    install key is the first 16 hex of the SHA-256 of the real state dir
    (:attr:`moltir.openclaw.Install.key`): one entry per OpenClaw install and profile, stable
    across runs. The entry name doubles as the exec SecretRef ``id`` the gateway asks the
    helper for, so the helper needs no configuration of its own.

Backends (shared/research/ir-anchors.md §C.2)
    :func:`preflight` names the backend keyring chose and refuses the ones that are no
    keyring at all (``fail``: raises on every call; ``null``: stores nothing), whatever the
    flags; plaintext file backends (``keyrings.alt`` PlaintextKeyring and friends, and any
    chain holding one) only with ``allow_insecure=True`` (``--allow-insecure-keyring``). It then
    reads one (absent) entry, which is what makes a Secret Service collection unlock: a locked
    or missing keyring fails here, before anything has changed. NoKeyringError, InitError,
    KeyringLocked and D-Bus errors become one-line :class:`MoltirError` s with exit code 3.

The secret helper
    OpenClaw's exec provider runs ``command`` with no shell and only the ``passEnv`` variables;
    it refuses a command that is a symlink, group/world-writable or not owned by the gateway's
    user (``dist/exec-provider-path-validation-*.mjs``). A console script in a venv is often a
    symlink (pipx), root-owned (system install) or group-writable (umask 002), so moltir writes
    its own launcher, :func:`helper_wrapper_path` = ``<moltir home>/bin/moltir-secret``, mode 0700
    in a 0700 folder, that execs *this* interpreter with ``-I -m moltir.secret_helper``
    (isolated: PYTHONPATH and friends cannot change what the gateway runs). The keyring backend
    moltir stored the token with is pinned in the provider's ``args`` (``--backend``), so the
    helper reads exactly where moltir wrote.

Boot safety
    The gateway refuses to start when its exec helper fails (shared/research/openclaw-run.md §9).
    :func:`boot_check` runs the helper the way the gateway will: same user, the environment of
    the running gateway (or of the systemd user manager that starts it, or this shell when
    neither is known), reduced to ``passEnv``, the request on stdin, the provider's timeout.

Modules
    :mod:`.failures` (keyring errors as one-line exit-3 errors), :mod:`.backends` (which backend, is it
    one moltir accepts), :mod:`.entries` (read, store, delete), :mod:`.readiness` (the preflight),
    :mod:`.launcher` (the helper's launcher and provider entry), :mod:`.config` (what the OpenClaw config
    points at), :mod:`.boot` (boot safety), :mod:`.doctor` (``moltir doctor``'s checks). Everything is
    re-exported here: callers use ``keystore.X``.
"""

from moltir.keystore.backends import (
    NO_KEYRING,
    BackendInfo,
    backend_name,
    check_backend,
    describe_backend,
    get_backend,
    is_plaintext,
)
from moltir.keystore.boot import (
    BootCheck,
    BootEnv,
    boot_check,
    boot_preflight,
    boot_refusal,
    gateway_env,
    run_helper,
)
from moltir.keystore.config import (
    configured_token,
    pinned_backend,
    pinned_backend_name,
    token_ref,
)
from moltir.keystore.doctor import doctor_checks
from moltir.keystore.entries import SERVICE, delete, entry_name, read, store
from moltir.keystore.failures import translate
from moltir.keystore.launcher import (
    HELPER_NAME,
    HELPER_TIMEOUT_MS,
    PASS_ENV,
    PROVIDER_ALIAS,
    exec_path_problem,
    helper_wrapper_path,
    install_helper_wrapper,
    launcher_problem,
    provider_config,
    wrapper_text,
)
from moltir.keystore.readiness import SYSTEM_NO_KEYRING, preflight, preflight_for

__all__ = [
    "HELPER_NAME", "HELPER_TIMEOUT_MS", "NO_KEYRING", "PASS_ENV", "PROVIDER_ALIAS", "SERVICE", "SYSTEM_NO_KEYRING",
    "BackendInfo", "BootCheck", "BootEnv",
    "backend_name", "boot_check", "boot_preflight", "boot_refusal", "check_backend", "configured_token", "delete",
    "describe_backend", "doctor_checks", "entry_name", "exec_path_problem", "gateway_env", "get_backend",
    "helper_wrapper_path", "install_helper_wrapper", "is_plaintext", "launcher_problem", "pinned_backend",
    "pinned_backend_name", "preflight", "preflight_for", "provider_config", "read", "run_helper", "store",
    "token_ref", "translate", "wrapper_text",
]
