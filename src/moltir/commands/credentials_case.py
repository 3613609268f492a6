"""The credential values a sealed case can give, read in memory from its copies (never written).

The active config's copy (manifest rule ``{config}``) is loaded with its ``$include`` files (the copies
keep the original layout under ``evidence/fs/``, so relative includes resolve to the copies); OpenClaw's
backups of it (rules ``{config}.*``) and the config before contain changed it (``preimage/``) give older
values, listed as ``<id>@<file>`` when they differ from the active config's. ``${VAR}`` and ``env``
SecretRefs are not resolved (the case holds no environment).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltir.errors import MoltirError
from moltir.openclaw.credentials import Credential, from_config


@dataclass(frozen=True)
class CaseCredential:
    cred: Credential
    case_path: str  # the copy it was read from, relative to the case
    skip: frozenset[str]  # sources (or "<source>#<table>") where the value lives: not exposures


def _parse(path: Path) -> dict[str, Any] | None:
    from moltir.openclaw.install import parse_config_text

    try:
        return parse_config_text(path.read_text(encoding="utf-8-sig"), path)
    except (OSError, UnicodeDecodeError, MoltirError):
        return None


def _main(case_dir: Path, entry: Mapping[str, Any], sources: Mapping[str, str]) -> list[CaseCredential]:
    from moltir.openclaw.configfile import ConfigFile

    copy = case_dir / str(entry["path"])
    try:
        cfg: ConfigFile | None = ConfigFile.load_path(copy, env={})
        data: Mapping[str, Any] | None = cfg.data if cfg else None
    except MoltirError:
        cfg, data = None, _parse(copy)
    if data is None:
        return []

    def owner(path: tuple[str, ...]) -> tuple[str, str]:
        if cfg is not None:
            try:
                file, inner = cfg.owner_of(path, for_write=False)
                rel = str(Path(file).relative_to(case_dir))
                return rel, ".".join(inner)
            except (MoltirError, ValueError):
                pass
        return str(entry["path"]), ".".join(path)

    out = []
    for c in from_config(data, owner=owner, env={}, dotenv={}):
        rel = c.file
        source = sources.get(rel, rel)
        real = Credential(c.id, c.kind, c.provider, source, c.key, c.storage, c.value, c.ref)
        out.append(CaseCredential(real, rel, frozenset({source})))
    return out


def _older(case_dir: Path, rel: str, source: str, current: dict[str, CaseCredential]) -> list[CaseCredential]:
    data = _parse(case_dir / rel)
    if data is None:
        return []
    out = []
    for c in from_config(data, owner=lambda p: (source, ".".join(p)), env={}, dotenv={}):
        now = current.get(c.id)
        if now is not None and now.cred.value == c.value:
            current[c.id] = CaseCredential(now.cred, now.case_path, now.skip | {source})
            continue
        name = Path(source).name
        older = Credential(f"{c.id}@{name}", c.kind, c.provider, source, c.key, c.storage, c.value, c.ref,
                           note=f"an older value, from {name}")
        out.append(CaseCredential(older, rel, frozenset({source})))
    return out


def _sqlite(case_dir: Path, files: list[Mapping[str, Any]]) -> list[CaseCredential]:
    """Store secrets and device tokens of the copied SQLite stores (read from a private temporary copy:
    SQLite cannot apply a WAL to a read-only file)."""
    from moltir.openclaw.credential_sqlite import db_credentials

    by_source = {str(f.get("source")): f for f in files}
    out: list[CaseCredential] = []
    for f in files:
        source = str(f.get("source"))
        if f.get("category") != "sqlite" or not source.endswith(".sqlite"):
            continue
        with tempfile.TemporaryDirectory(prefix="moltir-creds-") as tmp:
            work = Path(tmp) / "db.sqlite"
            shutil.copyfile(case_dir / str(f["path"]), work)
            wal = by_source.get(source + "-wal")
            if wal is not None:
                shutil.copyfile(case_dir / str(wal["path"]), Path(tmp) / "db.sqlite-wal")
            parent = Path(source).parent
            prefix = f"sqlite.agents.{parent.parent.name}." if parent.name == "agent" else "sqlite.state."
            for c in db_credentials(work, prefix, []):
                table_name = c.key.split(" ", 1)[0]
                real = Credential(c.id, c.kind, c.provider, source, c.key, c.storage, c.value, c.ref)
                out.append(CaseCredential(real, str(f["path"]), frozenset({f"{source}#{table_name}"})))
    return out


_ENTRY_KEYS = ("path", "source", "category", "rule")


def _slim(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json hook: a manifest object keeps the keys read here only."""
    obj = dict(pairs)
    return {k: obj[k] for k in _ENTRY_KEYS if k in obj} if isinstance(obj.get("path"), str) else obj


def _manifest(case_dir: Path) -> tuple[list[Mapping[str, Any]], dict[str, str]] | None:
    """The config and SQLite entries of the case's manifest, and every copy's source path; the manifest
    is streamed (a 38,000-file manifest read whole as dicts took over 100 MiB: triage reads the
    case's credentials first, issue 17). None when it is unreadable."""
    from moltir.evidence.manifest_reader import _manifest_files

    files: list[Mapping[str, Any]] = []
    sources: dict[str, str] = {}
    try:
        for f in _manifest_files(case_dir / "manifest.json", hook=_slim):
            if isinstance(f, Mapping) and isinstance(f.get("path"), str):
                sources[str(f["path"])] = str(f.get("source"))
                if f.get("category") in ("config", "sqlite"):
                    files.append(f)
    except (OSError, ValueError):
        return None
    return files, sources


def case_credentials(case_dir: Path) -> list[CaseCredential]:
    read = _manifest(case_dir)
    if read is None:
        return []
    files, sources = read
    main = next((f for f in files if f.get("category") == "config" and f.get("rule") == "{config}"), None)
    found = _main(case_dir, main, sources) if main is not None else []
    current = {c.cred.id: c for c in found}
    older: list[CaseCredential] = []
    for f in files:
        if f.get("category") == "config" and str(f.get("rule", "")).startswith("{config}."):
            older += _older(case_dir, str(f["path"]), str(f.get("source")), current)
    older += _sqlite(case_dir, files)
    pre = case_dir / "preimage"
    for path in sorted(pre.rglob("*")) if pre.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            rel = str(path.relative_to(case_dir))
            older += _older(case_dir, rel, rel, current)
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for c in [*current.values(), *older]:
        if (c.cred.id, c.cred.value) not in seen:
            seen.add((c.cred.id, c.cred.value))
            unique.append(c)
    return unique
