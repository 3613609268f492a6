"""Is the keyring usable, before anything changes (:func:`preflight`); the run-only stand-in for a
system install with no usable keyring (:func:`preflight_for`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltir.errors import MoltirError
from moltir.keystore.backends import BackendInfo, check_backend, describe_backend, get_backend
from moltir.keystore.entries import SERVICE
from moltir.keystore.failures import keyring_errors, translate

if TYPE_CHECKING:
    from moltir.openclaw import Install


def preflight(allow_insecure: bool) -> BackendInfo:
    """Check the keyring is usable before anything changes; raise exit 3 when it is not."""
    backend = get_backend()
    info = describe_backend(backend)
    check_backend(info, allow_insecure)
    try:
        backend.get_password(SERVICE, "preflight-probe")  # opens (and unlocks) the collection
    except keyring_errors() as exc:
        raise translate(exc, info.label) from None
    return info


SYSTEM_NO_KEYRING = "moltir.keystore.RunOnly"
_RUN_ONLY_SET = False  # this process uses the run-only keyring (see preflight_for)


def _run_only() -> Any:
    """A keyring that lives as long as this moltir run: for a system install with no usable keyring."""
    from keyring.backend import KeyringBackend

    class RunOnly(KeyringBackend):
        __module__ = "moltir.keystore"  # its name from before the package split, as messages show it
        priority = 0.0

        values: dict[tuple[str, str], str]

        def get_password(self, service: str, entry: str) -> str | None:
            return self.values.get((service, entry))

        def set_password(self, service: str, entry: str, value: str) -> None:
            self.values[(service, entry)] = value

        def delete_password(self, service: str, entry: str) -> None:
            self.values.pop((service, entry), None)

    backend = RunOnly()  # type: ignore[no-untyped-call]
    backend.values = {}
    return backend


def preflight_for(install: Install, allow_insecure: bool) -> BackendInfo:
    """:func:`preflight`, except where the gateway cannot read this account's keyring anyway
    (:attr:`Install.keyring_unreachable`: a system unit's ``User=openclaw`` with moltir as root, a
    container): the token goes into its 0600 config (plaintext mode) and a keyring copy is only a
    record; with no usable keyring that record is skipped (the config is the one copy) instead of
    refusing containment."""
    global _RUN_ONLY_SET
    info = BackendInfo(SYSTEM_NO_KEYRING, "no keyring (system install: the token is only in the 0600 config)", None)
    if _RUN_ONLY_SET:
        return info
    try:
        return preflight(allow_insecure)
    except MoltirError:
        if install.keyring_unreachable is None:
            raise
    import keyring

    keyring.set_keyring(_run_only())
    _RUN_ONLY_SET = True
    return info
