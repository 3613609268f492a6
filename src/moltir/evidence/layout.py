"""The case folder after a snapshot, and the formats of its records::

    evidence/fs/<absolute source path>       copies, original layout (files 0400, dirs 0500)
    evidence/journald/<unit>.json            journalctl --user -u <unit> -o json (bounded)
    evidence/sqlite-backup/<absolute path>   consistent copies (sqlite3 backup API), only when
                                             the gateway was running during the snapshot
    evidence/ledger/audit_events.jsonl       the audit ledger's rows, exported from the copied
                                             state/openclaw.sqlite (moltir.evidence.ledger)
    manifest.json   collector, host, clocks, roots, rules, files (+ what volatile/, preimage/,
                    audit/ already held), credentials listed, skipped entries with reasons
    SHA256SUMS      coreutils format, paths relative to the case folder (``sha256sum -c``)
    seal.json       sha256 of manifest.json and SHA256SUMS, journal head, sealed time

What earlier steps put in the case (``volatile/``, ``preimage/``, ``audit/`` and anything in
``evidence/`` outside the four folders above, e.g. ``evidence/audit/`` from ``audit.run``) is
hashed in place and covered by the seal (:func:`covered_case_files`). ``evidence/`` itself stays
writable for them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

SCHEMA: Final = "moltir.evidence/1"
EVIDENCE: Final = "evidence"
INCOMPLETE: Final = "INCOMPLETE"
SPOOL: Final = ".manifest-files.moltir.tmp"  # in the case dir while a snapshot runs (never sealed)
OWN_DIRS: Final = ("fs", "journald", "sqlite-backup", "ledger")  # under evidence/: written only by the snapshot
# Earlier steps' output, hashed in place and sealed: evidence/ outside OWN_DIRS (e.g. evidence/audit/,
# written by audit.run), and these case folders.
COVERED_CASE_DIRS: Final = ("volatile", "preimage", "audit")
# Written once when the case opens (who, where, when, why): sealed in place too, so an edited
# reason or operator fails verification. Not reported as "added" by a case sealed before it was.
COVERED_CASE_FILES: Final = ("case.json",)
CUSTODY: Final = "custody.jsonl"
# Written after the seal by read-only analyses of the case (``moltir triage``): never hashed, reported by
# verify as "added after seal" (not a failure).
ADDED_CASE_DIRS: Final = ("triage",)


def evidence_rel(source: str, kind: str = "fs") -> str:
    """Where a source path lands inside the case: ``evidence/fs/<absolute path>``."""
    return f"{EVIDENCE}/{kind}/{source.lstrip('/')}"


def covered_case_files(case_dir: Path) -> list[str]:
    """Files earlier steps put in the case that the seal covers in place (paths relative to the case)."""
    out: list[str] = []
    ev = case_dir / EVIDENCE
    if ev.is_dir() and not ev.is_symlink():
        for entry in sorted(p.name for p in ev.iterdir()):
            if entry in OWN_DIRS or entry == INCOMPLETE:
                continue
            out += _tree(case_dir, f"{EVIDENCE}/{entry}") if (ev / entry).is_dir() else [f"{EVIDENCE}/{entry}"]
    for sub in COVERED_CASE_DIRS:
        if (case_dir / sub).is_dir() and not (case_dir / sub).is_symlink():
            out += _tree(case_dir, sub)
    out += [name for name in COVERED_CASE_FILES if (case_dir / name).is_file() and not (case_dir / name).is_symlink()]
    return out


def added_case_files(case_dir: Path) -> list[str]:
    """Files under :data:`ADDED_CASE_DIRS` (relative to the case)."""
    return [p for d in ADDED_CASE_DIRS if (case_dir / d).is_dir() and not (case_dir / d).is_symlink()
            for p in _tree(case_dir, d)]


def _tree_iter(case_dir: Path, sub: str) -> Iterator[str]:
    """Every file (and symlink to a folder) under ``case_dir/sub``, relative to ``case_dir``."""
    base = str(case_dir).rstrip("/") + "/"
    for dirpath, dirnames, filenames in os.walk(base + sub):
        dirnames.sort()
        rel_dir = dirpath[len(base):]
        yield from (f"{rel_dir}/{fn}" for fn in filenames)
        yield from (f"{rel_dir}/{d}" for d in dirnames if os.path.islink(f"{dirpath}/{d}"))  # noqa: PTH114


def _tree(case_dir: Path, sub: str) -> list[str]:
    return sorted(_tree_iter(case_dir, sub))


def sums_line(digest: str, rel: str) -> bytes:
    """One SHA256SUMS line in coreutils format (escaped the way ``sha256sum`` escapes names)."""
    name = os.fsencode(rel)
    if b"\\" in name or b"\n" in name or b"\r" in name:
        name = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + digest.encode() + b"  " + name + b"\n"
    return digest.encode() + b"  " + name + b"\n"


def _dump(obj: Any) -> bytes:
    """Compact JSON: ``indent`` would switch json to its pure-Python encoder, which for a 20,000-file
    manifest costs ~90 MiB of peak memory and seconds (measured by bench/). ``jq .`` pretty-prints it."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n").encode()
