"""One file of the OpenClaw config as moltir read it (bytes, text, parsed document, identity) and as
it plans to write it (:class:`FileEdit`), plus the small helpers on parsed config data.

Reading refuses a missing or unreadable file (exit 3), a directory, text that is not UTF-8 or not
JSON5 (exit 2); see :mod:`moltir.openclaw.configfile` for the config as a whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from moltir.errors import env_error, usage_error
from moltir.fsutil import os_error
from moltir.openclaw.json5edit import Document, KeyPath, parse


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What a file was when moltir read it; compared again right before writing."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class SourceFile:
    """One file of the config (the main file or an include) as read from disk."""

    path: Path
    raw: bytes
    text: str
    doc: Document
    identity: Identity
    mode: int
    uid: int
    gid: int
    is_symlink: bool = False
    via: str = ""  # how the file was reached, e.g. "channels.$include './channels.json5'"


@dataclass(frozen=True)
class FileEdit:
    """The planned change of one file: texts before/after, its diff, the paths inside it."""

    path: Path
    before: str
    after: str
    diff: str
    edits: Mapping[KeyPath, object]  # path inside this file -> value (or DELETE)
    before_sha256: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True)
class WriteResult:
    path: Path
    before_sha256: str
    after_sha256: str
    preimage: str | None  # path of the pre-image inside the case, relative to the case folder


def _identity(st: os.stat_result, raw: bytes) -> Identity:
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, sha256(raw))


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise usage_error(f"{path}: not UTF-8 text (bad byte at offset {exc.start})",
                          "save the file as UTF-8; moltir changed nothing") from None


def read_source(path: Path, *, via: str = "") -> SourceFile:
    """Read and parse one config file. Missing -> exit 3; unreadable -> exit 3; bad JSON5 -> exit 2."""
    try:
        lst = os.lstat(path)
        with path.open("rb") as fh:
            raw = fh.read()
            st = os.fstat(fh.fileno())
    except FileNotFoundError:
        where = f" (included by {via})" if via else ""
        raise env_error(f"no OpenClaw config at {path}{where}",
                        "check --config/--profile/--state-dir (or OPENCLAW_CONFIG_PATH); "
                        "run 'moltir doctor' to see what moltir found") from None
    except IsADirectoryError:
        raise usage_error(f"{path} is a directory, not a config file", "point --config at the file") from None
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    text = _decode(raw, path)
    doc = parse(text, source=str(path))
    return SourceFile(path=path, raw=raw, text=text, doc=doc, identity=_identity(st, raw),
                      mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid,
                      is_symlink=stat.S_ISLNK(lst.st_mode), via=via)



def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files a killed moltir (``kill -9`` mid-write) left next to ``path``.

    :func:`moltir.fsutil.atomic_write` names them ``.<name>.moltir-<pid>.tmp``; one whose pid no
    longer runs is garbage (the target was never replaced by it). Returns what was removed.
    """
    removed: list[Path] = []
    for tmp in path.parent.glob(f".{path.name}.moltir-*.tmp"):
        pid_text = tmp.name[len(f".{path.name}.moltir-"):-len(".tmp")]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running (another moltir mid-write): not ours to touch
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(tmp).st_mode):
                tmp.unlink()
                removed.append(tmp)
    return removed


MISSING: Final = object()


def get_path(data: Any, path: KeyPath) -> Any:
    """The value at ``path`` in parsed config data, or :data:`MISSING`."""
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return MISSING
        data = data[key]
    return data


def kind_name(value: Any) -> str:
    """'a string', 'an object', ... for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
