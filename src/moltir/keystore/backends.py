"""Which keyring backend keyring chose, what it is, and whether moltir accepts it (no I/O)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from moltir.errors import env_error
from moltir.keystore.failures import HINT_DBUS, HINT_INSECURE, one_line, translate

# Backends that are no keyring at all: refused whatever the flags.
NO_KEYRING = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")


@dataclass(frozen=True)
class BackendInfo:
    name: str  # fully qualified class, e.g. "keyring.backends.SecretService.Keyring"
    label: str  # human: "SecretService Keyring"
    priority: float | None
    chain: tuple[str, ...] = ()  # for a ChainerBackend: the chained backends
    insecure: bool = False  # a plaintext file (accepted only with --allow-insecure-keyring)

    def describe(self) -> str:
        text = self.label
        if self.chain:
            text += " [" + ", ".join(".".join(c.rsplit(".", 2)[-2:]) for c in self.chain) + "]"
        if self.insecure:
            text += " (INSECURE: plaintext file)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "priority": self.priority, "chain": list(self.chain),
                "insecure": self.insecure}


def qualname(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def backend_name(backend: object) -> str:
    """The backend's name as :class:`BackendInfo` has it, without asking the backend anything."""
    return qualname(backend)


def is_plaintext(name: str) -> bool:
    """A backend that keeps secrets in a readable file (keyrings.alt's PlaintextKeyring and kin)."""
    module, _, cls = name.rpartition(".")
    return "plaintext" in cls.lower() or (module.startswith("keyrings.alt") and "Encrypted" not in cls
                                           and module.endswith(".file"))


def _priority(backend: object) -> float | None:
    try:
        value = type(backend).priority  # type: ignore[attr-defined]
    except Exception:
        return None
    return float(value) if isinstance(value, int | float) else None


def describe_backend(backend: object) -> BackendInfo:
    name = qualname(backend)
    label = f"{type(backend).__module__.rsplit('.', 1)[-1]} {type(backend).__name__}"
    chain: tuple[str, ...] = ()
    if type(backend).__name__ == "ChainerBackend":
        with contextlib.suppress(Exception):
            chain = tuple(qualname(b) for b in type(backend).backends)  # type: ignore[attr-defined]
    insecure = is_plaintext(name) or any(is_plaintext(c) or c in NO_KEYRING for c in chain)
    return BackendInfo(name, label, _priority(backend), chain, insecure)


def get_backend() -> Any:
    """keyring's backend (env PYTHON_KEYRING_BACKEND > keyringrc.cfg > best available)."""
    import keyring

    try:
        return keyring.get_keyring()
    except (ImportError, AttributeError, ValueError) as exc:
        raise env_error(f"the configured keyring backend cannot be loaded: {one_line(exc)}",
                        "fix PYTHON_KEYRING_BACKEND or keyringrc.cfg ('keyring diagnose' shows where)"
                        ) from None
    except Exception as exc:
        raise translate(exc) from None


def check_backend(info: BackendInfo, allow_insecure: bool) -> None:
    """Refuse what is no keyring at all, and plaintext backends unless allowed (exit 3). No I/O."""
    chosen = os.environ.get("PYTHON_KEYRING_BACKEND", "")
    if info.name == "keyring.backends.fail.Keyring":
        if chosen.endswith("fail.Keyring"):
            raise env_error(f"no keyring backend is available (PYTHON_KEYRING_BACKEND={chosen})",
                            "unset PYTHON_KEYRING_BACKEND (or name a real keyring in it), then run again")
        raise env_error("no keyring backend is available (keyring fell back to fail.Keyring)", HINT_DBUS)
    if info.name == "keyring.backends.null.Keyring":
        raise env_error("the keyring backend is null.Keyring, which stores nothing",
                        "unset PYTHON_KEYRING_BACKEND or fix keyringrc.cfg, and use a real keyring")
    if info.insecure and not allow_insecure:
        raise env_error(f"the keyring backend {info.describe()} keeps secrets in a plaintext file",
                        HINT_INSECURE)
