"""The snapshot (:func:`snapshot`), from ``evidence/INCOMPLETE`` to the seal.

A snapshot creates ``evidence/INCOMPLETE`` BEFORE copying anything and removes it only after
``seal.json`` is written: a crash, a full disk or Ctrl-C leaves the case marked incomplete and
unsealed, never a manifest that lies; a half-written copy is removed. Running the snapshot
again moves the incomplete attempt's copies aside (``evidence.attempt-<n>/``, kept, named in
the new manifest) and starts over.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moltir.engine.journal import Journal, utc_now
from moltir.errors import EXIT_STEP_FAILED, MoltirError, usage_error
from moltir.evidence.cases import case_state
from moltir.evidence.collector import _Collector
from moltir.evidence.copier import OnChunk, _DestError
from moltir.evidence.journald import _collect_journal, _system_units
from moltir.evidence.layout import EVIDENCE, INCOMPLETE, OWN_DIRS, covered_case_files
from moltir.evidence.ledger import export_ledger
from moltir.evidence.manifest import _clock, _manifest
from moltir.evidence.progress import _Progress
from moltir.evidence.roots import Sources, resolve_roots
from moltir.evidence.rules import CredentialMode
from moltir.evidence.seal import SnapshotResult, _seal
from moltir.evidence.sqlite_backup import _sqlite_backup
from moltir.evidence.walker import Skip, _Walker
from moltir.fsutil import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.openclaw import Install


def _gateway_running(install: Install) -> bool:
    from moltir.openclaw.gateway_http import port_open

    try:
        port = install.gateway_port()
    except MoltirError:
        port = install.gateway_port({})
    return port_open(port)


def _prepare_evidence_dir(case_dir: Path) -> list[str]:
    """Move the copies of an earlier incomplete/unsealed attempt aside (into ``evidence.attempt-N/``,
    kept); other steps' files in evidence/ (evidence/audit/) stay. Returns the earlier attempts."""
    ev = case_dir / EVIDENCE
    if ev.is_symlink():
        raise OSError(errno.ELOOP, "evidence/ is a symlink")
    leftovers = [ev / d for d in (*OWN_DIRS, INCOMPLETE) if (ev / d).exists() or (ev / d).is_symlink()]
    if leftovers:
        n = 1
        while (case_dir / f"{EVIDENCE}.attempt-{n}").exists():
            n += 1
        aside = case_dir / f"{EVIDENCE}.attempt-{n}"
        aside.mkdir(mode=0o700)
        for p in leftovers:
            p.rename(aside / p.name)
    return sorted(p.name for p in case_dir.glob(f"{EVIDENCE}.attempt-*"))


def _mark_incomplete(case_dir: Path, started: Mapping[str, Any], reason: str) -> None:
    data = json.dumps({"started": dict(started), "reason": reason, "at": utc_now()}, indent=2) + "\n"
    with contextlib.suppress(OSError, MoltirError):
        atomic_write(case_dir / EVIDENCE / INCOMPLETE, data.encode())


def _abandon(case: Case, journal: Journal, started: Mapping[str, Any], reason: str, files: int) -> None:
    """The snapshot stops: the case is marked incomplete, and the journal says so (when it can)."""
    _mark_incomplete(case.dir, started, reason)
    with contextlib.suppress(MoltirError, OSError):
        journal.append("evidence.incomplete", case_id=case.id, error=reason, files=files)


def _begin(case_dir: Path, start_clock: Mapping[str, Any]) -> list[str]:
    """An earlier attempt moved aside, then ``evidence/INCOMPLETE`` written before anything is copied.
    Returns the earlier attempts."""
    try:
        previous = _prepare_evidence_dir(case_dir)
        ensure_private_dir(case_dir / EVIDENCE)
        atomic_write(case_dir / EVIDENCE / INCOMPLETE,
                     (json.dumps({"started": start_clock, "reason": "snapshot in progress"}) + "\n").encode())
    except OSError as exc:
        raise _fail_message(exc, str(case_dir / EVIDENCE)) from None
    return previous


def _chunk_hook(bar: _Progress | None, on_chunk: OnChunk | None) -> OnChunk:
    """What the copier calls after every buffer: the progress line, then the caller's ``on_chunk``."""

    def chunk_hook(source: str, done: int, size: int) -> None:
        if bar is not None:
            bar(source, done, size)
        if on_chunk is not None:
            on_chunk(source, done, size)

    return chunk_hook


def _collect(col: _Collector, install: Install, sources: Sources, walker: _Walker, running: bool) -> str:
    """Every root walked and its files taken (the journal just before the config), the consistent
    SQLite copies when the gateway runs, the files earlier steps put in the case hashed in place.
    Returns how the SQLite stores were copied (for the manifest)."""
    for root in sources.roots:
        if root.key == "config" and sources.units:
            for unit in sources.units:  # logs before config: the journal is more volatile
                _collect_journal(col, install, unit)
        for item in walker.walk(root):
            if isinstance(item, Skip):
                col.skip(item)
            else:
                col.take(item)
    sqlite_mode = "byte-exact (gateway stopped: db + -wal + -shm are consistent)"
    if running:
        sqlite_mode = ("byte-exact copies taken while the gateway was running (may be inconsistent) "
                       "+ consistent copies with the sqlite3 backup API under evidence/sqlite-backup/")
        for entry in list(col.sqlite):
            _sqlite_backup(col, entry)
    answer = install.caps.answer("audit_ledger")
    export_ledger(col, None if answer.value is None else bool(answer.value), answer.source)
    for rel in covered_case_files(col.case_dir):
        col.take_case_file(rel)
    return sqlite_mode


def snapshot(case: Case, install: Install, journal: Journal, *, credentials: CredentialMode = "list",
             collect_journal: bool = True, gateway_running: bool | None = None,
             on_chunk: OnChunk | None = None, progress: bool | None = None,
             sources: Sources | None = None) -> SnapshotResult:
    """Collect, copy+hash, write manifest.json, SHA256SUMS and seal.json into ``case``.

    ``sources`` defaults to :func:`resolve_roots` of ``install``; ``on_chunk`` is called after
    every buffer copied; ``gateway_running=None`` probes the gateway's port.

    Raises ``MoltirError`` (exit 1) when the case cannot be written (disk full ...): the
    case is then marked incomplete and left unsealed. ``KeyboardInterrupt`` marks it
    incomplete too and propagates.
    """
    case_dir = case.dir
    if case_state(case_dir) == "sealed":
        raise usage_error(f"the evidence of case {case.id} is already sealed",
                          "open a new case to take another snapshot")
    running = _gateway_running(install) if gateway_running is None else gateway_running
    start_clock = _clock()
    previous = _begin(case_dir, start_clock)
    journal.append("evidence.start", case_id=case.id, credentials=credentials, gateway_running=running,
                   previous_attempts=previous)
    show = progress if progress is not None else sys.stderr.isatty()
    bar = _Progress(sys.stderr) if show else None
    col = _Collector(case_dir, credentials, _chunk_hook(bar, on_chunk))
    if sources is None:
        sources = resolve_roots(install, journal=collect_journal, system_units=_system_units(case))
    col.skipped.extend(sources.skipped)
    walker = _Walker(sources, install.product, exclude=[case_dir])
    try:
        try:
            sqlite_mode = _collect(col, install, sources, walker, running)
            _syncfs(case_dir / EVIDENCE)
            manifest = _manifest(case, install, sources, col, start_clock, running, sqlite_mode, credentials,
                                 previous)
            return _seal(case, journal, col, manifest)
        except _DestError as exc:
            raise _fail_message(exc.exc, exc.path) from None
        except OSError as exc:  # writing manifest/SHA256SUMS/seal (atomic_write already cleaned up)
            raise _fail_message(exc, str(case_dir)) from None
    except MoltirError as exc:
        _abandon(case, journal, start_clock, exc.message, col.count)
        raise
    except KeyboardInterrupt:
        _abandon(case, journal, start_clock, "interrupted", col.count)
        raise
    finally:
        col.close_spool(remove=True)
        if bar is not None:
            bar.close()


def _fail_message(exc: OSError, where: str) -> MoltirError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "disk full"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    elif exc.errno == errno.EROFS:
        what = "read-only file system"
    else:
        what = exc.strerror or str(exc)
    return MoltirError(f"evidence snapshot failed: {what} writing {where}; the case is marked incomplete, not sealed",
                       hint="free space (or fix the folder) and run it again; the incomplete copy is kept aside",
                       exit_code=EXIT_STEP_FAILED)


def _syncfs(path: Path) -> None:
    """Flush the copies to disk once, before a manifest describes them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if libc.syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
            raise _DestError(exc, str(path)) from None
        os.sync()
