"""Where the installed release keeps its exec approvals document, and reading, writing and putting back
that document exactly. No policy here (:mod:`.approvals` decides what to write).

The places (capability ``exec_approvals``; checked in the packages):

* ``home``: ``~/.openclaw/exec-approvals.json`` whatever the state dir (2026.1.29
  ``dist/infra/exec-approvals.js``: ``DEFAULT_FILE = "~/.openclaw/exec-approvals.json"``, written as
  ``JSON.stringify(file, null, 2) + "\\n"``, mode 0600; 2026.5.28 the same);
* ``state-dir``: ``<state>/exec-approvals.json`` (2026.6.6 to 2026.7.x; 2026.7.35 imports the home one);
* ``sqlite``: the singleton row ``config_key = 'current'`` of the table ``exec_approvals_config`` in
  ``<state>/state/openclaw.sqlite`` (2026.8.1 on; 2026.9.6 ``dist/exec-approvals-sqlite-*.mjs``): the
  document in ``raw_json`` plus projection columns (``default_security``, ``default_ask``,
  ``default_ask_fallback`` ...), written by one upsert, as OpenClaw's own CLI does.

The document holds the approval socket's token (``socket.token``): a secret. It is never printed,
logged or put in an argv; the case keeps the pre-image (like the config's) and restore.json only its
SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from moltir.errors import EXIT_STEP_FAILED, MoltirError
from moltir.fsutil import atomic_write

TABLE: Final = "exec_approvals_config"
KEY: Final = "current"
_PROJECTED: Final = ("security", "ask", "askFallback")  # -> default_security, default_ask, default_ask_fallback


@dataclass(frozen=True)
class Snapshot:
    """The document as it is now: ``raw`` None when there is none (no file, no row)."""

    kind: str  # "file" | "sqlite"
    path: Path  # the file, or the SQLite database
    raw: str | None
    mode: int | None = None  # the file's mode
    owner: tuple[int, int] | None = None  # the file's (uid, gid)
    row: Mapping[str, Any] | None = None  # sqlite: every column of the row

    @property
    def sha256(self) -> str | None:
        return None if self.raw is None else hashlib.sha256(self.raw.encode("utf-8")).hexdigest()

    def where(self) -> str:
        return f"{self.path}#{TABLE}" if self.kind == "sqlite" else str(self.path)


def locate(install: Any) -> tuple[str, Path]:
    """(kind, path) of the document for this install's release."""
    place = str(install.caps.value("exec_approvals"))
    if place == "sqlite":
        return "sqlite", Path(install.state_dir) / "state" / "openclaw.sqlite"
    if place == "state-dir":
        return "file", Path(install.state_dir) / "exec-approvals.json"
    return "file", Path(install.home) / ".openclaw" / "exec-approvals.json"


def _fail(message: str, hint: str) -> MoltirError:
    return MoltirError(message, hint=hint, exit_code=EXIT_STEP_FAILED)


@contextmanager
def _connect(db: Path, *, readonly: bool) -> Iterator[sqlite3.Connection]:
    """A connection (autocommit; transactions explicit), closed on exit; never creates the database."""
    uri = f"file:{db}?mode={'ro' if readonly else 'rw'}"
    with closing(sqlite3.connect(uri, uri=True, timeout=15, isolation_level=None)) as conn:
        conn.row_factory = sqlite3.Row
        yield conn


@contextmanager
def _transaction(db: Path) -> Iterator[sqlite3.Connection]:
    with _connect(db, readonly=False) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def has_table(db: Path) -> bool:
    if not db.is_file():
        return False
    try:
        with _connect(db, readonly=True) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                (TABLE,)).fetchone() is not None
    except sqlite3.Error:
        return False


def read(install: Any) -> Snapshot:
    kind, path = locate(install)
    if kind == "file":
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise _fail(f"{path} is a symlink: moltir does not edit exec approvals through a link",
                            "replace the link by the file it points to, then run 'moltir harden' again")
            return Snapshot(kind, path, path.read_bytes().decode("utf-8"), stat.S_IMODE(st.st_mode),
                            (st.st_uid, st.st_gid))
        except FileNotFoundError:
            return Snapshot(kind, path, None)
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                        "check the file's owner and contents") from None
    try:
        with _connect(path, readonly=True) as conn:
            row = conn.execute("SELECT * FROM exec_approvals_config WHERE config_key=?", (KEY,)).fetchone()
    except sqlite3.Error as exc:
        raise _fail(f"cannot read {path}#{TABLE}: {exc}",
                    "check the state store with 'openclaw approvals get'") from None
    data = dict(row) if row is not None else None
    return Snapshot(kind, path, None if data is None else str(data["raw_json"]), row=data)


def parse(raw: str | None) -> dict[str, Any] | None:
    """The document as a dict; an absent one is OpenClaw's empty document; None when it does not parse
    as a version-1 document (OpenClaw would then ignore it: moltir leaves it alone)."""
    if raw is None:
        return {"version": 1, "defaults": {}, "agents": {}}
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("defaults", {}), dict):
        return None
    return doc


def serialize(doc: Mapping[str, Any]) -> str:
    """As OpenClaw writes it: ``JSON.stringify(doc, null, 2) + "\\n"``."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(snap: Snapshot, raw: str, owner: tuple[int, int] | None = None) -> None:
    """Replace the document (the file 0600, or its mode kept; the row by the same upsert as OpenClaw),
    only when it is still what ``snap`` read (else fail: someone changed it meanwhile)."""
    if snap.kind == "file":
        if read_raw(snap) != snap.raw:
            raise _fail(f"{snap.path} changed while moltir was writing it", "run 'moltir harden' again")
        snap.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(snap.path, raw.encode("utf-8"), mode=snap.mode if snap.mode is not None else 0o600,
                     owner=snap.owner or owner)
        return
    doc = json.loads(raw)
    defaults = doc.get("defaults") or {}
    now = int(time.time() * 1000)
    with _transaction(snap.path) as conn:
        cur = conn.execute("SELECT raw_json FROM exec_approvals_config WHERE config_key=?", (KEY,)).fetchone()
        if (None if cur is None else cur["raw_json"]) != snap.raw:
            raise _fail(f"{snap.where()} changed while moltir was writing it", "run 'moltir harden' again")
        if cur is None:
            conn.execute("INSERT INTO exec_approvals_config (config_key, raw_json, socket_path, has_socket_token, "
                         "default_security, default_ask, default_ask_fallback, auto_allow_skills, agent_count, "
                         "allowlist_count, updated_at_ms) VALUES (?, ?, NULL, 0, ?, ?, ?, NULL, 0, 0, ?)",
                         (KEY, raw, defaults.get("security"), defaults.get("ask"), defaults.get("askFallback"), now))
        else:
            conn.execute("UPDATE exec_approvals_config SET raw_json=?, default_security=?, default_ask=?, "
                         "default_ask_fallback=?, updated_at_ms=? WHERE config_key=?",
                         (raw, *(defaults.get(k) for k in _PROJECTED), now, KEY))


def read_raw(snap: Snapshot) -> str | None:
    """The document's text now, at the place ``snap`` names."""
    if snap.kind == "file":
        try:
            return snap.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return None
    return read_row(snap.path)[0]


def read_row(db: Path) -> tuple[str | None, dict[str, Any] | None]:
    with _connect(db, readonly=True) as conn:
        row = conn.execute("SELECT * FROM exec_approvals_config WHERE config_key=?", (KEY,)).fetchone()
    return (None, None) if row is None else (str(row["raw_json"]), dict(row))


def put_back(kind: str, path: Path, before: Mapping[str, Any] | None, raw: bytes | None, mode: int | None,
             owner: tuple[int, int] | None = None) -> None:
    """The document exactly as it was: the file's bytes and mode (or no file), the row's every column
    (or no row)."""
    if kind == "file":
        if raw is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, raw, mode=mode if mode is not None else 0o600, owner=owner)
        return
    with _transaction(path) as conn:
        known = {str(r["name"]) for r in conn.execute("PRAGMA table_info(exec_approvals_config)")}
        cols = list(before or {})
        if not set(cols) <= known:
            raise _fail(f"the saved row of {path}#{TABLE} names columns the table does not have",
                        "the case or the store changed shape: put the approvals back with 'openclaw approvals set'")
        conn.execute("DELETE FROM exec_approvals_config WHERE config_key=?", (KEY,))
        if before is not None:
            # the column names were checked against the table's own (PRAGMA table_info) above
            conn.execute(f"INSERT INTO exec_approvals_config ({', '.join(cols)}) "  # noqa: S608
                         f"VALUES ({', '.join('?' for _ in cols)})",
                         tuple(before[c] for c in cols))
