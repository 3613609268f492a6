"""What a snapshot collects: ONE table, :data:`RULES` (root, glob, category). Read it to see at a
glance what a snapshot takes. The roots are resolved per install by
:func:`~moltir.evidence.roots.resolve_roots`.

Decisions: the config is always copied (it is the primary evidence, token and all: the case is
0700 and its files 0400); ``credential`` rules (channel creds, identity keys, model API keys,
dotenv, secrets.json) are listed with size and SHA-256 unless ``credentials="copy"``. SQLite
stores (which also hold secrets on 2026.9) are copied: they hold the transcripts, pairing,
devices, approvals and the audit ledger. Rolling logs of the default profile family are taken
for every install (on 2026.1.x all profiles log there); another profile's family is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Category = Literal["config", "log", "journal", "transcript", "sqlite", "approvals", "devices", "pairing",
                   "credential", "persistence", "state", "history", "workspace", "case"]
CredentialMode = Literal["list", "copy"]
ALL: Final = ("openclaw", "clawdbot")


@dataclass(frozen=True)
class Rule:
    """Collect files matching ``pattern`` (relative to root ``root``) as ``category``.

    Globs: ``*``/``?``/``[..]`` within one path segment, ``**`` any number of segments.
    Placeholders: ``{config}`` config file name, ``{includes}`` every ``$include`` file found
    under the root, ``{family}`` the gateway's rolling-log name families (``openclaw``,
    ``openclaw-<profile>``, ``clawdbot``), ``{log_name}``/``{log_stem}``/``{log_ext}`` the
    ``logging.file`` override, ``{unit}`` a systemd user unit. First matching rule wins.
    """

    root: str
    pattern: str
    category: Category
    note: str = ""
    products: tuple[str, ...] = ALL  # Install.product values the rule applies to


_DATE: Final = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"


# Every source root and rule, in collection order (most volatile first: RFC 3227 §2.1).
RULES: Final[tuple[Rule, ...]] = (
    # gateway file logs in the shared temp dir: pruned by OpenClaw after 24 h, so first
    Rule("tmp-logs", "{family}-" + _DATE + ".log", "log", "today's and older rolling logs (profile-named)"),
    Rule("tmp-logs", "{family}-" + _DATE + ".[0-9].log", "log", "numbered size-rotation archives .1-.5"),
    Rule("tmp-logs", "openclaw.log", "log", "legacy single-file default"),
    Rule("tmp-logs", "clawdbot.log", "log", "legacy single-file default", ("clawdbot",)),
    Rule("log-file", "{log_name}", "log", "logging.file override"),
    Rule("log-file", "{log_stem}.[0-9]{log_ext}", "log", "its size-rotation archives"),
    Rule("macos-logs", "*", "log", "launchd stdout/stderr (gateway[-<profile>].log, .err.log)"),
    Rule("journald", "{unit}", "journal", "journalctl --user -u <unit> -o json, last 30 days, bounded"),
    # the config, OpenClaw's own backups of it, every $include
    Rule("config", "{config}", "config", "the active config"),
    Rule("config", "{config}.bak", "config", "OpenClaw's backup ring"),
    Rule("config", "{config}.bak.*", "config", "OpenClaw's backup ring (.bak.1 ... .bak.4)"),
    Rule("config", "{config}.last-good", "config", "last-known-good copy"),
    Rule("config", "{config}.pre-update", "config", "copy taken before an update"),
    Rule("config", "{config}.clobbered.*", "config", "external edits doctor repaired"),
    Rule("config", "{config}.rejected.*", "config", "OpenClaw-owned writes that failed validation"),
    Rule("config", "{includes}", "config", "$include files (recursive, up to 10 levels)"),
    Rule("include-roots", "{includes}", "config", "$include files under OPENCLAW_INCLUDE_ROOTS"),
    # the state dir
    Rule("state", "logs/**", "log", "gateway-restart.log, stability bundles, any file log kept here"),
    Rule("state", "agents/*/sessions/**", "transcript",
         "legacy JSONL transcripts + sessions.json; cold/*.jsonl.zst archives (2026.9)"),
    Rule("state", "agents/*/agent/*.sqlite*", "sqlite", "per-agent store (transcripts, memory, auth), -wal/-shm"),
    Rule("state", "state/*.sqlite*", "sqlite",
         "shared store: pairing, devices, exec approvals, audit ledger (2026.9), -wal/-shm"),
    Rule("state", "memory/*.sqlite*", "sqlite", "memory index, -wal/-shm"),
    Rule("state", "tasks/**/*.sqlite*", "sqlite", "task ledger tasks/runs.sqlite (2026.3.31-2026.5.x)"),
    Rule("state", "flows/*.sqlite*", "sqlite", "flows registry flows/registry.sqlite (2026.4.2-2026.5.x)"),
    Rule("state", "plugin-state/*.sqlite*", "sqlite", "plugin state store (2026.4.29-2026.5.x)"),
    Rule("state", "transcripts/**", "transcript", "meeting transcripts (2026.5.26-2026.7.x)"),
    Rule("state", "exec-approvals.json", "approvals", "exec approvals (legacy location in the state dir)"),
    Rule("state", "devices/*", "devices", "paired/pending devices (+ .migrated leftovers)"),
    Rule("state", "nodes/*", "devices", "paired/pending nodes"),
    Rule("state", "credentials/*-pairing.json*", "pairing", "channel pairing requests"),
    Rule("state", "credentials/*-allowFrom.json*", "pairing", "channel allow-lists granted by pairing"),
    Rule("state", "credentials/**", "credential", "channel credentials (WhatsApp creds.json, oauth.json)"),
    Rule("state", "identity/*", "credential", "gateway device identity: private key and device token"),
    Rule("state", "agents/*/agent/models.json", "credential", "model provider config with plaintext API keys"),
    Rule("state", "agents/*/agent/auth-profiles.json", "credential", "model auth profiles"),
    Rule("state", "agents/*/agent/auth.json", "credential", "model auth"),
    Rule("state", ".env", "credential", "dotenv read by the gateway"),
    Rule("state", "secrets.json", "credential", "file secret provider"),
    Rule("state", "cron/**", "persistence", "scheduled jobs"),
    Rule("state", "hooks/**", "persistence", "hooks"),
    Rule("state", "extensions/*/package.json", "persistence",
         "installed plugins (manifests only: plugin code is a persistence vector; its code stays in place)"),
    Rule("state", "extensions/*/openclaw.plugin.json", "persistence", "installed plugin manifests"),
    Rule("state", "workspace/*.md", "persistence", "agent prompt files (AGENTS, SOUL, TOOLS, ...)"),
    Rule("state", "telegram/*.json", "state", "channel cursors (update offsets)"),
    Rule("home-openclaw", "exec-approvals.json", "approvals",
         "2026.1.x: hard-coded ~/.openclaw/exec-approvals.json whatever the state dir"),
    Rule("oauth", "*-pairing.json*", "pairing", "OPENCLAW_OAUTH_DIR: channel pairing requests"),
    Rule("oauth", "*-allowFrom.json*", "pairing", "OPENCLAW_OAUTH_DIR: allow-lists"),
    Rule("oauth", "**", "credential", "OPENCLAW_OAUTH_DIR: channel credentials"),
    Rule("xdg-config", "gateway.env", "credential", "~/.config/openclaw/gateway.env fallback dotenv"),
    # where a credential may have leaked (moltir credentials --case searches every copy): the shell
    # histories of the user that runs the gateway, the files of the agent's workspace. The workspace:
    # its top level, one folder down and memory/ -- not deeper (cloned repositories, dependencies)
    Rule("home", ".bash_history", "history", "bash history of the gateway's user"),
    Rule("home", ".zsh_history", "history", "zsh history of the gateway's user"),
    Rule("home", ".local/share/fish/fish_history", "history", "fish history of the gateway's user"),
    Rule("workspace", "*", "workspace", "agent workspace (agents.defaults.workspace): files the agent keeps"),
    Rule("workspace", "*/*", "workspace", "agent workspace: one folder down"),
    Rule("workspace", "memory/**", "workspace", "agent workspace: memory notes"),
    Rule("home-workspace", "*", "workspace", "2026.1.x default workspace ~/.openclaw/workspace[-<profile>]"),
    Rule("home-workspace", "*/*", "workspace", "2026.1.x default workspace: one folder down"),
    Rule("home-workspace", "memory/**", "workspace", "2026.1.x default workspace: memory notes"),
)
