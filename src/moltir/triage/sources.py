"""Which copied files of a case are transcripts, read from its manifest (a file entry at a time).

Layouts (tests/harness/transcripts.py; openclaw-facts.md §5):

* JSONL, 2026.1.29 ... 2026.7.35: ``<state>/agents/<agentId>/sessions/<sessionId>.jsonl``, with the
  ``sessions.json`` index beside them (session key -> ``sessionId``, ``channel``/``lastChannel``).
  ``*.trajectory.jsonl`` (2026.5.28+) are runtime traces, not transcripts: left out.
* SQLite, 2026.8.2 and 2026.9.6: ``<state>/agents/<agentId>/agent/openclaw-agent.sqlite`` (+ ``-wal``),
  table ``transcript_events``. When the gateway ran during the snapshot, ``evidence/sqlite-backup/``
  holds a consistent copy, preferred over the byte copy under ``evidence/fs/``.
* The config and OpenClaw's copies of it (``.bak*``, ``.last-good``, ``.pre-update``, ``.clobbered.*``,
  ``.rejected.*``) for per-key changes (:mod:`moltir.triage.config_source`).
* Cold transcript archives, 2026.9: ``<state>/agents/<agentId>/sessions/cold/<sha256>.jsonl.zst``.
* Gateway file logs (``*.log`` copies) and the unit journal export (``evidence/journald/*.json``).
* The audit ledger (2026.7.35+), exported by the snapshot to ``evidence/ledger/audit_events.jsonl``.
* The shared state database ``<state>/state/openclaw.sqlite`` (2026.8.1 on: channel pairing approvals,
  read by :mod:`moltir.triage.policy`), the ``evidence/sqlite-backup/`` copy preferred as above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from moltir.evidence.manifest_reader import _FileRef, _manifest_files

_JSONL: Final = re.compile(r"^evidence/fs/.*/agents/([^/]+)/sessions/([^/]+)\.jsonl$")
_INDEX: Final = re.compile(r"^evidence/fs/.*/agents/([^/]+)/sessions/sessions\.json$")
_COLD: Final = re.compile(r"^evidence/fs/.*/agents/([^/]+)/sessions/cold/[^/]+\.jsonl\.zst$")
_LOG: Final = re.compile(r"^evidence/fs/.*\.log$|^evidence/journald/[^/]+\.json$")  # file logs, the unit journal
_DEVICES: Final = re.compile(r"^evidence/fs/.*/devices/paired\.json$")  # the device store (file era)
_LEDGER: Final = re.compile(r"^evidence/ledger/audit_events\.jsonl$")  # moltir.evidence.ledger's export
# a config (openclaw.json, clawdbot.json ...) or one of OpenClaw's copies of it (evidence RULES "config")
_CONFIG: Final = re.compile(r"^(?P<base>evidence/fs/.*/[^/]+\.json5?)(?P<suffix>\.bak(\.[0-9]+)?|\.last-good"
                            r"|\.pre-update|\.clobbered\.[^/]+|\.rejected\.[^/]+)?$")
_CONFIG_NAME: Final = re.compile(r"^(openclaw|clawdbot|moltbot|moldbot)([-.][^/]*)?\.json5?$")
_PREIMAGE: Final = re.compile(r"^preimage/([^/]+\.json5?)$")  # the config before containment edited it
_PAIRED: Final = re.compile(r"^evidence/fs/.*/credentials/([a-z0-9]+)(-[^/]+)?-allowFrom\.json$")
_SQLITE: Final = re.compile(r"^evidence/(fs|sqlite-backup)(/.*/agents/([^/]+)/agent/openclaw-agent\.sqlite)(-wal)?$")
_STATE_DB: Final = re.compile(r"^evidence/(fs|sqlite-backup)(/.*/state/openclaw\.sqlite)(-wal)?$")


@dataclass(frozen=True)
class CaseFile:
    path: str  # relative to the case
    sha256: str
    agent_id: str


@dataclass
class SqliteCopy:
    db: CaseFile
    wal: CaseFile | None = None


@dataclass
class Catalog:
    jsonl: list[CaseFile] = field(default_factory=list)
    indexes: dict[str, CaseFile] = field(default_factory=dict)  # sessions folder -> sessions.json
    sqlite: list[SqliteCopy] = field(default_factory=list)
    ledger: list[CaseFile] = field(default_factory=list)  # the audit ledger exported at the snapshot
    cold: list[CaseFile] = field(default_factory=list)  # 2026.9 cold transcript archives (*.jsonl.zst)
    logs: list[CaseFile] = field(default_factory=list)  # gateway file logs and the unit journal export
    devices: list[CaseFile] = field(default_factory=list)  # devices/paired.json (up to 2026.7.x)
    # config path -> its versions (the config and its copies, with the copy's suffix; "" = the config)
    configs: dict[str, list[tuple[CaseFile, str]]] = field(default_factory=dict)
    policy_config: CaseFile | None = None  # the config whose DM policies were in force (moltir.triage.policy)
    pairing_stores: list[tuple[str, CaseFile]] = field(default_factory=list)  # (channel, *-allowFrom.json)
    state_dbs: list[SqliteCopy] = field(default_factory=list)  # state/openclaw.sqlite (2026.8.1 on)
    policy_origin: str = ""  # the copied active config (policy_config itself, or the config it is a preimage of)

    @property
    def empty(self) -> bool:
        return not (self.jsonl or self.sqlite or self.cold)


@dataclass
class _Gather:
    """What :func:`catalog` collects before it settles (databases by origin, config versions, preimages)."""

    out: Catalog = field(default_factory=Catalog)
    dbs: dict[tuple[str, str], dict[str, CaseFile]] = field(default_factory=dict)
    state_dbs: dict[tuple[str, str], dict[str, CaseFile]] = field(default_factory=dict)
    configs: dict[str, list[tuple[CaseFile, str]]] = field(default_factory=dict)
    preimages: dict[str, CaseFile] = field(default_factory=dict)

    def simple(self, path: str, f: CaseFile) -> bool:
        """File the entry when a single pattern decides it; False when it is for :meth:`other`."""
        out = self.out
        for rx, where in ((_DEVICES, out.devices), (_LOG, out.logs), (_LEDGER, out.ledger)):
            if rx.match(path):
                where.append(f)
                return True
        m = _COLD.match(path)
        if m:
            out.cold.append(CaseFile(path, f.sha256, m.group(1)))
            return True
        m = _PREIMAGE.match(path)
        if m:
            self.preimages[m.group(1)] = f
            return True
        m = _PAIRED.match(path)
        if m:
            out.pairing_stores.append((m.group(1), f))
            return True
        return False

    def other(self, path: str, f: CaseFile) -> None:
        m = _CONFIG.match(path)
        if m:
            self.configs.setdefault(m.group("base"), []).append((f, m.group("suffix") or ""))
            return
        m = _SQLITE.match(path)
        if m:
            self.dbs.setdefault((m.group(2), m.group(1)), {})["wal" if m.group(4) else "db"] = CaseFile(
                path, f.sha256, m.group(3))
            return
        m = _STATE_DB.match(path)
        if m:
            self.state_dbs.setdefault((m.group(2), m.group(1)), {})["wal" if m.group(3) else "db"] = f


def catalog(case_dir: Path) -> Catalog:
    """The sources the case holds (its manifest streamed; only matching entries are kept)."""
    g = _Gather()
    out = g.out
    for ref in _manifest_files(case_dir / "manifest.json"):
        if not isinstance(ref, _FileRef) or not isinstance(ref.sha256, str):
            continue
        m = _JSONL.match(ref.path)
        if m and not m.group(2).endswith(".trajectory"):
            out.jsonl.append(CaseFile(ref.path, ref.sha256, m.group(1)))
            continue
        m = _INDEX.match(ref.path)
        if m:
            out.indexes[ref.path.rsplit("/", 1)[0]] = CaseFile(ref.path, ref.sha256, m.group(1))
            continue
        f = CaseFile(ref.path, ref.sha256, "")
        if not g.simple(ref.path, f):
            g.other(ref.path, f)
    out.sqlite = _settled(g.dbs)
    out.state_dbs = _settled(g.state_dbs)
    for items in (out.jsonl, out.cold, out.logs, out.devices):
        items.sort(key=lambda x: x.path)
    out.pairing_stores.sort(key=lambda p: p[1].path)
    # a config with at least one copy beside it (a lone *.json under evidence/fs/ is not a config history)
    out.configs = {base: vs for base, vs in sorted(g.configs.items())
                   if any(s == "" for _, s in vs) and any(s != "" for _, s in vs)}
    out.policy_config, out.policy_origin = _policy_config(g.configs, g.preimages)
    return out


def _settled(dbs: dict[tuple[str, str], dict[str, CaseFile]]) -> list[SqliteCopy]:
    """One copy per database (by origin path): the consistent sqlite-backup copy when there is one."""
    out = []
    for (origin, kind), files in sorted(dbs.items()):
        if kind == "fs" and (origin, "sqlite-backup") in dbs:
            continue  # the consistent copy is read instead
        if "db" in files:
            out.append(SqliteCopy(files["db"], files.get("wal")))
    return out


def _policy_config(configs: dict[str, list[tuple[CaseFile, str]]],
                   preimages: dict[str, CaseFile]) -> tuple[CaseFile | None, str]:
    """The config before containment (its preimage) if the case has one, else the copied active config;
    a config with OpenClaw's own name (or with copies beside it) first. With it, the copied active
    config's path (where the config lived: its relative ``$include`` paths start there)."""
    def rank(base: str) -> tuple[bool, bool, str]:
        name = base.rsplit("/", 1)[-1]
        return (name not in ("openclaw.json", "clawdbot.json"), len(configs[base]) < 2, base)

    # a config by its name, or a file OpenClaw keeps backups of (any other *.json of the state is not one)
    named = [b for b in configs if _CONFIG_NAME.match(b.rsplit("/", 1)[-1]) or len(configs[b]) >= 2]
    for base in sorted(named, key=rank):
        actives = [f for f, suffix in configs[base] if suffix == ""]
        if actives:
            return preimages.get(base.rsplit("/", 1)[-1], actives[0]), actives[0].path
    return None, ""
