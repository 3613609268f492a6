"""The token entries: service ``moltir``, one ``gateway-token:<install key>`` entry per install."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltir.errors import EXIT_ENV, MoltirError
from moltir.keystore.backends import describe_backend, get_backend
from moltir.keystore.failures import keyring_errors, translate
from moltir.redaction import fingerprint, register

if TYPE_CHECKING:
    from moltir.openclaw import Install

SERVICE = "moltir"


def entry_name(install: Install) -> str:
    """The keyring entry (and exec SecretRef id) holding this install's gateway token."""
    return f"gateway-token:{install.key}"


def read(service: str, entry: str, *, backend: Any | None = None) -> str | None:
    """The stored value, or None. Keyring failures -> exit 3."""
    kr = get_backend() if backend is None else backend
    try:
        value = kr.get_password(service, entry)
    except keyring_errors() as exc:
        raise translate(exc, describe_backend(kr).label) from None
    if value is not None:
        register(value)
    return value if isinstance(value, str) else None


def store(service: str, entry: str, token: str, *, backend: Any | None = None) -> str:
    """Store ``token``, read it back, compare. Returns the fingerprint. Failures -> exit 3."""
    register(token)
    kr = get_backend() if backend is None else backend
    label = describe_backend(kr).label
    try:
        kr.set_password(service, entry, token)
        back = kr.get_password(service, entry)
    except keyring_errors() as exc:
        raise translate(exc, label) from None
    if back != token:
        got = fingerprint(back) if isinstance(back, str) else "nothing"
        raise MoltirError(f"the keyring ({label}) did not return the token just stored in {service}/{entry} "
                          f"(stored {fingerprint(token)}, read back {got})",
                          hint="check the keyring backend ('keyring diagnose'); "
                               "the gateway config was not changed",
                          exit_code=EXIT_ENV)
    return fingerprint(token)


def delete(service: str, entry: str, *, backend: Any | None = None) -> bool:
    kr = get_backend() if backend is None else backend
    try:
        kr.delete_password(service, entry)
    except keyring_errors():
        return False
    return True
