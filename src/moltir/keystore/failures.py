"""Keyring failures as one-line errors (exit 3) that say how to fix them."""

from __future__ import annotations

import contextlib

from moltir.errors import MoltirError, env_error

HINT_DBUS = ("start a D-Bus session with an unlocked Secret Service (log in to the desktop; on a headless "
             "host: dbus-run-session + 'gnome-keyring-daemon --unlock'), then run again")
HINT_UNLOCK = ("unlock the keyring (log in to the desktop session; on a headless host: "
               "'echo PASSWORD | gnome-keyring-daemon --unlock --replace'), then run again")
HINT_INSECURE = ("use a real keyring (Secret Service, macOS Keychain), or pass --allow-insecure-keyring "
                 "to accept a plaintext keyring file")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300].rstrip(".!")


def translate(exc: BaseException, backend: str = "") -> MoltirError:
    """A keyring failure as a one-line error (exit 3) that says how to fix it."""
    kind = type(exc).__name__
    where = f" ({backend})" if backend else ""
    msg = one_line(exc)
    if kind == "NoKeyringError":
        return env_error("no keyring backend is available" + where, HINT_DBUS)
    if kind == "KeyringLocked":
        return env_error(f"the keyring is locked{where}: {msg}", HINT_UNLOCK)
    if kind == "InitError":
        return env_error(f"the keyring could not be opened{where}: {msg}", HINT_UNLOCK)
    if kind in ("SecretServiceNotAvailableException", "DBusErrorResponse", "ItemNotFoundException") \
            or "DBUS_SESSION_BUS_ADDRESS" in msg or "D-Bus" in msg or "dbus" in msg.lower():
        return env_error(f"the Secret Service is not reachable{where}: {msg}", HINT_DBUS)
    if isinstance(exc, EOFError):
        return env_error(f"the keyring backend{where} asks for a password on a terminal", HINT_INSECURE)
    return env_error(f"the keyring failed{where}: {kind}: {msg}",
                     "run 'keyring diagnose' to see which backend is used, fix it, then run again")


def keyring_errors() -> tuple[type[BaseException], ...]:
    import keyring.errors

    errors: list[type[BaseException]] = [keyring.errors.KeyringError, EOFError, RuntimeError, OSError]
    with contextlib.suppress(ImportError):
        import secretstorage.exceptions

        errors.append(secretstorage.exceptions.SecretStorageException)
    with contextlib.suppress(ImportError):
        import jeepney.wrappers  # type: ignore[import-untyped]

        errors.append(jeepney.wrappers.DBusErrorResponse)
    return tuple(errors)
