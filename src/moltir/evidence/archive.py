"""Export (:func:`export`): a deterministic tar.gz of the case (``custody.jsonl`` excluded: the
archive's own hash is appended to it), age-encrypted on request."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from moltir.errors import usage_error
from moltir.evidence.cases import case_state
from moltir.evidence.copier import _sha256_file, _write_all
from moltir.evidence.custody_log import custody
from moltir.evidence.fileinfo import _is_within
from moltir.evidence.layout import CUSTODY
from moltir.fsutil import fsync_dir


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    size: int
    members: int
    state: str


class _HashingWriter(io.RawIOBase):
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.h = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        _write_all(self.fd, view)
        self.h.update(view)
        self.size += len(view)
        return len(view)


def parse_recipients(texts: Sequence[str]) -> list[Any]:
    """age recipients (``age1…`` X25519 keys, or ``ssh-ed25519 …`` / ``ssh-rsa …`` public keys);
    a bad one is a one-line usage error."""
    import pyrage

    out = []
    for text in texts:
        t = text.strip()
        try:
            kind = pyrage.ssh if t.startswith("ssh-") else pyrage.x25519
            out.append(kind.Recipient.from_str(t))
        except (pyrage.RecipientError, ValueError) as exc:
            raise usage_error(f"--encrypt {t[:40]!r}: not an age recipient ({exc})",
                              "give an age public key (age1..., from 'age-keygen') or an SSH public key "
                              "(ssh-ed25519 ..., ssh-rsa ...)") from None
    return out


def export(case_dir: Path, out: Path, recipients: Sequence[str] = ()) -> ExportResult:
    """A deterministic tar.gz of the case (sorted, fixed owner/mtime, gzip mtime 0); its
    SHA-256 is appended to the case's custody log. ``custody.jsonl`` itself is not archived.

    ``recipients``: the archive is age-encrypted to them (pyrage: the reference ``age`` format,
    readable with ``age -d`` / ``rage -d``); the plaintext archive exists only as a 0600 temp file
    next to the output while it is encrypted. The custody log records the recipients and the SHA-256
    of the encrypted file."""
    keys = parse_recipients(recipients) if recipients else []
    case_dir = Path(case_dir).absolute()
    out = Path(out).absolute()
    _check_export(case_dir, out)
    state = case_state(case_dir)
    mtime = 0
    with contextlib.suppress(OSError, ValueError, TypeError):
        mtime = int(json.loads((case_dir / "seal.json").read_bytes())["sealed_at_ns"]) // 1_000_000_000
    case_id = case_dir.name
    with contextlib.suppress(OSError, ValueError):
        case_id = str(json.loads((case_dir / "case.json").read_bytes()).get("case_id") or case_id)
    members = _members(case_dir)
    digest, size = _write_archive(out, members, case_id, mtime, keys)
    extra: dict[str, Any] = {}
    if keys:
        extra = {"encrypted": "age", "recipients": [str(r) if str(r) else "ssh key" for r in keys],
                 "plaintext_sha256": digest}
        digest, size = _sha256_file(out), out.stat().st_size
    custody(case_dir, f"exported to {out}", action="export", archive=str(out), archive_sha256=digest,
            archive_bytes=size, members=len(members), case_state=state, **extra)
    return ExportResult(out, digest, size, len(members), state)


def _check_export(case_dir: Path, out: Path) -> None:
    """A usage error unless ``case_dir`` is a case and ``out`` a new file outside it, in a folder that exists."""
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    if _is_within(out, case_dir):
        raise usage_error(f"{out} is inside the case folder", "write the archive somewhere else (-o PATH)")
    if out.exists() or out.is_symlink():
        raise usage_error(f"{out} already exists", "choose another -o path (moltir never overwrites an export)")
    if not out.parent.is_dir():
        raise usage_error(f"{out.parent} does not exist", "create the folder or choose another -o path")


def _members(case_dir: Path) -> list[tuple[str, Path, bool]]:
    """What the archive holds, sorted: (path relative to the case, path, is a folder). Not archived:
    the custody log, symlinks, anything not a regular file, moltir's temp files."""
    members: list[tuple[str, Path, bool]] = []
    for dirpath, dirnames, filenames in os.walk(case_dir):
        dirnames.sort()
        for d in dirnames:
            p = Path(dirpath) / d
            if not p.is_symlink():
                members.append((p.relative_to(case_dir).as_posix(), p, True))
        for fn in filenames:
            p = Path(dirpath) / fn
            rel = p.relative_to(case_dir).as_posix()
            if rel == CUSTODY or p.is_symlink() or not p.is_file() or ".moltir-" in fn:
                continue
            members.append((rel, p, False))
    members.sort(key=lambda m: m[0])
    return members


def _write_archive(out: Path, members: Sequence[tuple[str, Path, bool]], case_id: str, mtime: int,
                   keys: Sequence[Any]) -> tuple[str, int]:
    """The archive written to a temp file next to ``out``, then encrypted to ``keys`` (if any) or
    renamed into place. Returns the SHA-256 and size of the tar.gz (before encryption)."""
    tmp = out.with_name(f".{out.name}.moltir-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            raw = _write_tar(fd, members, case_id, mtime)
            os.fsync(fd)
        finally:
            os.close(fd)
        if keys:
            _encrypt(tmp, out, keys)
        else:
            tmp.rename(out)
        fsync_dir(out.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            from moltir.fsutil import os_error

            raise os_error(exc, f"writing {out}") from None
        raise
    return raw.h.hexdigest(), raw.size


def _write_tar(fd: int, members: Sequence[tuple[str, Path, bool]], case_id: str, mtime: int) -> _HashingWriter:
    """The tar.gz of ``members`` (under ``<case_id>/``, owner 0, mtime ``mtime``) written to ``fd``, hashed."""
    raw = _HashingWriter(fd)
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, path, is_dir in members:
            info = tarfile.TarInfo(f"{case_id}/{rel}")
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o700
                tar.addfile(info)
                continue
            info.mode = 0o400
            with open(path, "rb") as fh:
                info.size = os.fstat(fh.fileno()).st_size
                tar.addfile(info, _Bounded(fh, info.size))
    return raw


def _encrypt(plain: Path, out: Path, keys: Sequence[Any]) -> None:
    import pyrage

    tmp = out.with_name(f".{out.name}.moltir-age-{os.getpid()}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        pyrage.encrypt_file(str(plain), str(tmp), list(keys))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.rename(out)
    finally:
        for leftover in (tmp, plain):
            with contextlib.suppress(OSError):
                leftover.unlink()


class _Bounded(io.RawIOBase):
    """Exactly ``size`` bytes of ``fh``: a file that changed after fstat cannot corrupt the tar."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh = fh
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        parts = []
        while want > 0:
            chunk = self.fh.read(want)
            if not chunk:
                raise OSError(errno.EIO, "a case file shrank while being archived")
            parts.append(chunk)
            want -= len(chunk)
            self.left -= len(chunk)
        return b"".join(parts)
