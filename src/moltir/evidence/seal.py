"""The seal: manifest.json and SHA256SUMS written, then seal.json over both (journal head, sealed
time); the snapshot's folders made read-only and its result (with its warnings) made."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from moltir.engine.journal import Journal
from moltir.evidence.collector import _Collector
from moltir.evidence.fileinfo import _iso
from moltir.evidence.layout import EVIDENCE, INCOMPLETE, OWN_DIRS, SCHEMA, _dump
from moltir.evidence.manifest import _hashed, _manifest_chunks, _sums_chunks
from moltir.fsutil import atomic_write, atomic_write_chunks, fsync_dir

if TYPE_CHECKING:
    from moltir.engine.case import Case

SKIPPED_SHOWN: Final = 8  # skipped sources named (with their reason) in the step's warnings


@dataclass(frozen=True)
class SnapshotResult:
    case_dir: Path
    files: int
    bytes: int
    listed: int
    skipped: int
    changed_during_copy: tuple[str, ...]
    manifest_sha256: str
    sealed_at: str
    gateway_running: bool
    warnings: tuple[str, ...] = ()


def _seal(case: Case, journal: Journal, col: _Collector, manifest: dict[str, Any]) -> SnapshotResult:
    """Write manifest.json and SHA256SUMS (streamed: memory does not grow with the number of files),
    then seal.json over both. ``files`` in the manifest and SHA256SUMS are in collection order: roots
    in RULES order, each folder's entries sorted by name (deterministic for the same tree)."""
    case_dir = case.dir
    manifest_hash, sums_hash = hashlib.sha256(), hashlib.sha256()
    atomic_write_chunks(case_dir / "manifest.json", _hashed(_manifest_chunks(manifest, col), manifest_hash),
                        mode=0o400)
    atomic_write_chunks(case_dir / "SHA256SUMS", _hashed(_sums_chunks(col, case_dir), sums_hash), mode=0o400)
    sealed_ns = time.time_ns()
    seal = {"schema": SCHEMA, "case_id": case.id, "manifest_sha256": manifest_hash.hexdigest(),
            "sha256sums_sha256": sums_hash.hexdigest(), "files": col.count,
            "bytes": manifest["counts"]["bytes"], "journal_head": journal.head, "journal_records": journal.seq,
            "sealed_at": _iso(sealed_ns), "sealed_at_ns": sealed_ns, "sealed_monotonic_ns": time.monotonic_ns()}
    seal_bytes = _dump(seal)
    atomic_write(case_dir / "seal.json", seal_bytes, mode=0o400)
    (case_dir / EVIDENCE / INCOMPLETE).unlink()
    fsync_dir(case_dir / EVIDENCE)
    for own in OWN_DIRS:  # evidence/ itself stays writable: audit.run adds evidence/audit/ later
        for dirpath, _dirs, _files in os.walk(case_dir / EVIDENCE / own, topdown=False):
            os.chmod(dirpath, 0o500)
    changed = tuple(col.changed)
    journal.append("evidence.sealed", case_id=case.id, seal_sha256=hashlib.sha256(seal_bytes).hexdigest(),
                   manifest_sha256=seal["manifest_sha256"], files=seal["files"], bytes=seal["bytes"],
                   listed=len(manifest["listed"]), skipped=len(manifest["skipped"]),
                   changed_during_copy=list(changed))
    warnings = []
    if changed:
        warnings.append(f"{len(changed)} file(s) changed while being copied (flagged in the manifest): "
                        + ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else ""))
    skipped = manifest["skipped"]
    if skipped:  # named with their reasons: a symlink to /etc/shadow should not hide in a count
        warnings.append(f"{len(skipped)} source(s) skipped, not copied (all in manifest.json):")
        warnings += [f"  skipped {s['source']}: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            warnings.append(f"  ... and {len(skipped) - SKIPPED_SHOWN} more")
    return SnapshotResult(case_dir, seal["files"], seal["bytes"], len(manifest["listed"]), len(manifest["skipped"]),
                          changed, seal["manifest_sha256"], seal["sealed_at"], manifest["gateway_running"],
                          tuple(warnings))
