"""The collector: copies (or, for credentials, lists) what the walk found into the case, and
keeps the manifest's entries, skipped sources and counts.

Only regular files are opened (``lstat`` first, ``fstat`` after open must show the same inode), and
``O_NONBLOCK`` keeps a FIFO swapped in between the two from hanging the snapshot; a file of 64 MiB or
more that is mostly holes (sparse) is skipped, not copied. The copy gets the source's atime/mtime;
``fstat`` before and after flags ``changed_during_copy``.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from moltir.evidence.copier import (
    BUF_SIZE,
    OnChunk,
    _copy_fd,
    _DestError,
    _hole_fraction,
    _human,
    _mkdirs,
    _open_source,
    _sparse_suspect,
)
from moltir.evidence.fileinfo import _cannot, _changed, _kind, _stat_fields
from moltir.evidence.layout import SPOOL, _dump, evidence_rel
from moltir.evidence.rules import CredentialMode
from moltir.evidence.walker import Found, Skip


@dataclass
class _Collector:
    case_dir: Path
    credentials: CredentialMode
    on_chunk: OnChunk | None
    buf: bytearray = field(default_factory=lambda: bytearray(BUF_SIZE))
    made_dirs: set[str] = field(default_factory=set)
    # manifest entries of the copied files go to a spool file as they are made (one compact JSON line
    # each), not into a list: 20,000 files held as dicts cost ~70 MiB; only counts stay in memory
    spool: IO[bytes] | None = None
    count: int = 0
    changed: list[str] = field(default_factory=list)          # sources that changed while being copied
    sqlite: list[dict[str, Any]] = field(default_factory=list)  # copied .sqlite stores (for the backup API)
    listed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes: int = 0
    noatime_refused: int = 0
    ledger: dict[str, Any] | None = None  # what the audit-ledger export found (moltir.evidence.ledger)

    @property
    def spool_path(self) -> Path:
        return self.case_dir / SPOOL

    def add(self, entry: dict[str, Any]) -> None:
        """Record a copied (or hashed in place) file for the manifest."""
        if self.spool is None:
            self.spool = open(self.spool_path, "wb")  # noqa: SIM115 -- closed by close_spool()
        self.spool.write(_dump(entry))
        self.count += 1
        if entry.get("changed_during_copy"):
            self.changed.append(str(entry["source"]))
        if entry.get("category") == "sqlite" and str(entry["source"]).endswith(".sqlite"):
            self.sqlite.append(entry)

    def entries(self) -> Iterator[builtins.bytes]:  # (``bytes`` is a field of this class)
        """The spooled manifest entries, one compact JSON line each, in the order they were made."""
        self.close_spool(remove=False)
        if self.count == 0:
            return
        with open(self.spool_path, "rb") as fh:
            yield from fh

    def close_spool(self, *, remove: bool) -> None:
        if self.spool is not None:
            self.spool.flush()
            self.spool.close()
            self.spool = None
        if remove:
            with contextlib.suppress(OSError):
                self.spool_path.unlink()

    def skip(self, s: Skip) -> None:
        if any(e["source"] == s.source for e in self.skipped):
            return  # met again through an overlapping root
        entry = {"source": s.source, "reason": s.reason}
        if s.root:
            entry["root"] = s.root
        if s.category:
            entry["category"] = s.category
        self.skipped.append(entry)

    def take(self, f: Found, *, kind: str = "fs") -> dict[str, Any] | None:
        copy = f.rule.category != "credential" or self.credentials == "copy"
        opened = self._open(f)
        if opened is None:
            return None
        fd, noatime = opened
        dst: int | None = None
        rel = evidence_rel(f.source, kind)
        complete = False  # a copy that did not finish (disk full, Ctrl-C, read error) is removed
        try:
            st0 = os.fstat(fd)
            if self._refused(f, fd, st0):
                return None
            if not noatime:
                self.noatime_refused += 1
            if st0.st_size > len(self.buf):  # one read does a small file: no advice needed
                with contextlib.suppress(OSError, AttributeError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if copy:
                dst = self._create_copy(rel)
            try:
                digest, copied = _copy_fd(fd, dst, self.buf, f.source, st0.st_size, self.on_chunk, rel)
            except _DestError:
                raise
            except OSError as exc:  # the SOURCE failed (I/O error, ...): skip it, keep going
                self.skip(Skip(f.source, f"read error: {exc.strerror}", f.root.key, f.rule.category))
                return None
            st1 = os.fstat(fd)
            if dst is not None:
                try:
                    os.utime(dst, ns=(st0.st_atime_ns, st0.st_mtime_ns))
                except OSError as exc:
                    raise _DestError(exc, rel) from None
            complete = True
        finally:
            os.close(fd)
            if dst is not None:
                os.close(dst)
                if not complete:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.case_dir, rel))  # noqa: PTH108,PTH118
        return self._record(f, rel, copy, digest, copied, st0, st1, noatime)

    def _open(self, f: Found) -> tuple[int, bool] | None:
        """The source opened (and whether with ``O_NOATIME``), or None: vanished, or skipped saying why."""
        try:
            return _open_source(f.name, f.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None  # vanished since the listing
            reason = ("replaced by a symlink after listing (not followed)" if exc.errno == errno.ELOOP
                      else _cannot("open", exc, f.lst))
            self.skip(Skip(f.source, reason, f.root.key, f.rule.category))
            return None

    def _refused(self, f: Found, fd: int, st0: os.stat_result) -> bool:
        """Is the opened source not to be copied (replaced since the listing, or sparse)? Skipped, saying why."""
        if not stat.S_ISREG(st0.st_mode) or (st0.st_dev, st0.st_ino) != (f.lst.st_dev, f.lst.st_ino):
            what = "a different file" if stat.S_ISREG(st0.st_mode) else f"a {_kind(st0.st_mode)}"
            self.skip(Skip(f.source, f"replaced by {what} after listing (not copied)", f.root.key,
                           f.rule.category))
            return True
        if _sparse_suspect(st0) and (holes := _hole_fraction(fd, st0.st_size)) > 0.5:
            self.skip(Skip(f.source, f"sparse file: {_human(st0.st_size)} long but {holes:.0%} holes, "
                           f"{_human(st0.st_blocks * 512)} on disk (not copied: a planted sparse file "
                           "would fill the case's disk; no OpenClaw log or store is sparse)",
                           f.root.key, f.rule.category))
            return True
        return False

    def _create_copy(self, rel: str) -> int:
        """The copy's file in the case, created (with its folders) and open for writing."""
        _mkdirs(self.case_dir, rel.rpartition("/")[0], self.made_dirs)
        try:
            # created read-only (0400): the open descriptor still writes it, and nobody else can
            return os.open(os.path.join(self.case_dir, rel),  # noqa: PTH118 -- hot path, no pathlib
                           os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
        except OSError as exc:
            raise _DestError(exc, rel) from None

    def _record(self, f: Found, rel: str, copy: bool, digest: str, copied: int, st0: os.stat_result,
                st1: os.stat_result, noatime: bool) -> dict[str, Any]:
        """The manifest entry of a source taken: spooled when copied, listed when not (a credential)."""
        entry: dict[str, Any] = {"source": f.source, "root": f.root.key, "category": f.rule.category,
                                 "rule": f.rule.pattern, "size": copied, "size_at_open": st0.st_size,
                                 "sha256": digest, "changed_during_copy": _changed(st0, st1, copied),
                                 "noatime": noatime, **_stat_fields(st0)}
        if copy:
            entry["path"] = rel
            self.add(entry)
            self.bytes += copied
        else:
            entry["not_copied"] = "credential: listed only (with credentials: copy to copy it)"
            self.listed.append(entry)
        return entry

    def take_case_file(self, rel: str) -> None:
        """Hash a file an earlier step put in the case (volatile/, preimage/, audit/) in place."""
        path = self.case_dir / rel
        try:
            fd, _ = _open_source(str(path), None)
        except OSError as exc:
            self.skipped.append({"source": f"case:{rel}", "reason": f"cannot open: {exc.strerror}"})
            return
        try:
            st0 = os.fstat(fd)
            if not stat.S_ISREG(st0.st_mode):
                self.skipped.append({"source": f"case:{rel}", "reason": f"{_kind(st0.st_mode)}, not a regular file"})
                return
            digest, copied = _copy_fd(fd, None, self.buf, rel, st0.st_size, self.on_chunk)
            st1 = os.fstat(fd)
        finally:
            os.close(fd)
        self.add({"path": rel, "source": f"case:{rel}", "root": "case", "category": "case",
                  "size": copied, "size_at_open": st0.st_size, "sha256": digest,
                  "changed_during_copy": _changed(st0, st1, copied), **_stat_fields(st0)})
        self.bytes += copied
