"""Small in-process keyring backends for unit tests (the real Secret Service is in tests/integration).

``FileKeyring`` keeps its entries in the JSON file named by ``MOLTIR_TEST_KEYRING_FILE`` so that a
child process (the secret helper) sees what the test stored; it is loaded there through a
keyringrc.cfg ``keyring-path``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import InitError, KeyringLocked, NoKeyringError


class MemKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


class LockedKeyring(MemKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


class UninitKeyring(MemKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise InitError("Failed to create the collection: Prompt dismissed..")


class NoBackendKeyring(MemKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise NoKeyringError("No recommended backend was available.")


class PlaintextKeyring(MemKeyring):
    """Named like keyrings.alt's plaintext file backend."""


class ForgetfulKeyring(MemKeyring):
    """Accepts writes, returns something else (a broken backend)."""

    def get_password(self, service: str, username: str) -> str | None:
        return None if username == "preflight-probe" else "not-what-you-stored"


class FileKeyring(MemKeyring):
    def _path(self) -> Path:
        return Path(os.environ.get("MOLTIR_TEST_KEYRING_FILE") or Path.home() / "fake-keyring.json")

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path().read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get_password(self, service: str, username: str) -> str | None:
        if os.environ.get("MOLTIR_TEST_KEYRING_LOCKED") == "1" or (self._path().parent / "LOCKED").exists():
            raise KeyringLocked("Failed to unlock the collection!")
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._path().write_text(json.dumps(data))
        os.chmod(self._path(), 0o600)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}", None)
        self._path().write_text(json.dumps(data))
