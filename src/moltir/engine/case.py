"""The case folder: one per incident (or drill), mode 0700.

Layout (shared/DESIGN.md, ir-anchors.md §B.3)::

    case.json       who, where, when, why, versions  (written at creation)
    restore.json    what restore needs; each section written ONCE, before the change it undoes
    journal.jsonl   hash-chained event log (moltir.engine.journal)
    volatile/       process snapshot taken before the gateway is stopped
    preimage/       exact bytes of every file moltir edits, saved before the edit
    evidence/       the sealed copy of logs, transcripts, config (evidence.snapshot)

The per-install index (``<moltir home>/installs/<install key>.json``) remembers the latest
case of each OpenClaw install, so ``status``, ``restore`` and a resumed ``contain`` find it
even when ``--case-dir`` put it elsewhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import secrets as pysecrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltir import __version__
from moltir.engine.journal import Journal, utc_now
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_VERIFY, MoltirError, usage_error
from moltir.fsutil import atomic_write, ensure_private_dir, make_private_dirs, os_error, write_json


def new_case_id() -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{pysecrets.token_hex(2)}"


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass
class Case:
    dir: Path
    readonly: bool = False  # dry runs: reading allowed, every write refused
    # the folders Case.create made for this case (outermost first): what abandon_new removes
    created_dirs: tuple[Path, ...] = field(default=(), repr=False, compare=False)

    # ---- creation / opening ---------------------------------------------------------------
    @classmethod
    def create(cls, folder: Path, *, kind: str, install_info: Mapping[str, Any], reason: str,
               case_id: str | None = None, extra: Mapping[str, Any] | None = None) -> Case:
        """Open a new case folder holding ``case.json`` (``extra`` adds fields to it).

        Decision: a case that cannot be opened (disk full, read-only or unwritable folder) changed
        nothing -- no step has run -- so it is exit 3 (environment not ready) saying "nothing was
        changed", not exit 1 ("a step failed"), and no half-made case is left behind: the folders this
        call created are removed (an empty ``--case-dir`` the user made stays). See
        :meth:`abandon_new` for a failure right after (the install's case index).
        """
        if folder.exists() and any(folder.iterdir()):
            raise usage_error(f"{folder} is not empty and is not a moltir case",
                              "choose another --case-dir")
        try:
            created = tuple(make_private_dirs(folder))
        except OSError as exc:
            raise _not_opened(os_error(exc, f"creating {folder}")) from None
        case = cls(folder, created_dirs=created)
        record = {
            "case_id": case_id or folder.name,
            "kind": kind,
            "opened_at": utc_now(),
            "operator": _operator(),
            "uid": os.getuid(),
            "host": socket.gethostname(),
            "reason": reason,
            "moltir_version": __version__,
            "openclaw": dict(install_info),
            **(extra or {}),
        }
        try:
            os.chmod(folder, 0o700)
            write_json(folder / "case.json", record)
        except OSError as exc:
            raise case.abandon_new(os_error(exc, f"writing {folder / 'case.json'}")) from None
        except MoltirError as exc:
            raise case.abandon_new(exc) from None
        return case

    def abandon_new(self, exc: MoltirError) -> MoltirError:
        """Remove this just-created case (no step ran in it) and return ``exc`` as the error to raise:
        exit 3 and "nothing was changed" when it was a failure of the environment (disk full, ...).

        Removes ``case.json`` and the folders :meth:`create` made, nothing else: a folder that is not
        empty (someone else's file) stays."""
        with contextlib.suppress(OSError):
            (self.dir / "case.json").unlink()
        for folder in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                folder.rmdir()
        return _not_opened(exc)

    @classmethod
    def open(cls, folder: Path, *, readonly: bool = False) -> Case:
        if not (folder / "case.json").is_file():
            raise MoltirError(f"{folder} is not a moltir case (no case.json)",
                              hint="pass a case folder from 'moltir evidence list'", exit_code=EXIT_USAGE)
        return cls(folder, readonly=readonly)

    # ---- records ----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.info.get("case_id", self.dir.name))

    @property
    def info(self) -> dict[str, Any]:
        path = self.dir / "case.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:  # a dry run's would-be case
            return {}
        except (OSError, ValueError) as exc:
            raise _damaged(path, exc) from None
        if not isinstance(data, dict):
            raise _damaged(path, ValueError("not a JSON object"))
        return data

    @property
    def journal_path(self) -> Path:
        return self.dir / "journal.jsonl"

    def journal(self) -> Journal:
        return Journal(None if self.readonly else self.journal_path)

    def _guard(self) -> None:
        if self.readonly:
            raise RuntimeError("write to a read-only (dry-run) case")

    def restore_data(self) -> dict[str, Any]:
        path = self.dir / "restore.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise _damaged(path, exc) from None
        if not isinstance(data, dict):
            raise _damaged(path, ValueError("not a JSON object"))
        return data

    def restore_section(self, section: str) -> Any:
        return self.restore_data().get(section)

    def record_restore(self, section: str, data: Any) -> Any:
        """Store ``data`` under ``section`` of restore.json unless it is already there.

        Write-once: a resumed or repeated run never overwrites what the first run saw.
        Returns what is stored (the earlier record when there was one).
        """
        self._guard()
        current = self.restore_data()
        if section in current:
            return current[section]
        current[section] = data
        write_json(self.dir / "restore.json", current)
        return data

    def update_restore(self, section: str, data: Any) -> None:
        """Replace a section on purpose (e.g. restore marking what it has put back)."""
        self._guard()
        current = self.restore_data()
        current[section] = data
        write_json(self.dir / "restore.json", current)

    # ---- files ------------------------------------------------------------------------------
    def subdir(self, *parts: str) -> Path:
        path = self.dir.joinpath(*parts)
        if not self.readonly:
            ensure_private_dir(path)
        return path

    def write_file(self, rel: str, data: bytes, *, overwrite: bool = False) -> Path:
        """Write a file inside the case (0600, atomic). Refuses to overwrite unless asked."""
        self._guard()
        path = self.dir / rel
        ensure_private_dir(path.parent)
        if path.exists() and not overwrite:
            return path
        atomic_write(path, data)
        return path

    def write_json(self, rel: str, obj: Any, *, overwrite: bool = False) -> Path:
        text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
        return self.write_file(rel, text.encode("utf-8"), overwrite=overwrite)


def _not_opened(exc: MoltirError) -> MoltirError:
    """The error for a case that could not be opened: nothing changed, so a failure of the
    environment (disk full: exit 1 from :func:`moltir.fsutil.os_error`) is exit 3; exit 2/3/4/130
    keep their code."""
    code = EXIT_ENV if exc.exit_code == EXIT_STEP_FAILED else exc.exit_code
    message = exc.message.rstrip(".")
    if "nothing was changed" not in message:
        message += "; no case was opened and nothing was changed"
    hint = exc.hint or "fix the cause and run the command again"
    if "--case-dir" not in hint:
        hint += " (or pass --case-dir on another disk)"
    return MoltirError(message, hint=hint, exit_code=code)


def _damaged(path: Path, exc: Exception) -> MoltirError:
    """A case record moltir wrote atomically no longer reads: edited or corrupted (exit 5)."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split(":")[0]
    return MoltirError(f"{path} is damaged ({why}): moltir writes it atomically, so it was edited or corrupted",
                       hint="keep the case as evidence; 'moltir evidence verify' checks the sealed copy; "
                            "'moltir contain --new-case' starts a fresh case", exit_code=EXIT_VERIFY)


# ---- the per-install index --------------------------------------------------------------------

def same_dir(a: Path, b: Path) -> bool:
    """The same folder, symlinks resolved (as written when it cannot be resolved)."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a.absolute() == b.absolute()


def index_path(installs_dir: Path, install_key: str) -> Path:
    return installs_dir / f"{install_key}.json"


#: case kinds with their own "latest" entry, never the incident case that status/restore act on
OWN_LATEST = ("drill", "harden", "rotate")


def remember_latest(installs_dir: Path, install_key: str, case_dir: Path, state_dir: Path, *,
                    kind: str = "contain") -> None:
    """Record ``case_dir`` as the install's latest case.

    A drill is its own small case and has its own history (``moltir drill history``): it is
    recorded as ``latest_drill`` and never replaces ``latest_case``, the incident that
    ``status``, ``restore`` and a resumed ``contain`` act on. (Otherwise a drill run during
    an incident, or a failed one, would hide the containment from ``moltir restore``.) A harden
    case likewise is ``latest_harden`` (what ``moltir harden --undo`` undoes by default).
    """
    ensure_private_dir(installs_dir)
    path = index_path(installs_dir, install_key)
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    record = dict(current) if isinstance(current, dict) else {}
    record[f"latest_{kind}" if kind in OWN_LATEST else "latest_case"] = str(case_dir.absolute())
    record["state_dir"] = str(state_dir)
    write_json(path, record)


def latest_case_dir(installs_dir: Path, install_key: str, kind: str = "") -> Path | None:
    """The install's latest incident case (``kind`` "drill" or "harden": the latest of those)."""
    field = f"latest_{kind}" if kind in OWN_LATEST else "latest_case"
    path = index_path(installs_dir, install_key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get(field):
        return None
    latest = Path(str(data[field]))
    return latest if (latest / "case.json").is_file() else None
