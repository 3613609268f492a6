"""manifest.json (collector, host, clocks, roots, rules, files, listed credentials, skipped
sources) and SHA256SUMS, written as streams: the file entries come from the collector's spool."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import platform
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from moltir import __version__
from moltir.evidence.collector import _Collector
from moltir.evidence.copier import _sha256_file
from moltir.evidence.fileinfo import _iso
from moltir.evidence.layout import COVERED_CASE_DIRS, COVERED_CASE_FILES, OWN_DIRS, SCHEMA, _dump, sums_line
from moltir.evidence.roots import Sources
from moltir.evidence.rules import RULES

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.openclaw import Install

FILES_PLACEHOLDER: Final = "\u0000moltir-files\u0000"


def _clock() -> dict[str, Any]:
    ns = time.time_ns()
    return {"utc": _iso(ns), "unix_ns": ns, "monotonic_ns": time.monotonic_ns(),
            "timezone": time.strftime("%Z"), "utc_offset": time.strftime("%z")}


def _binary_info(install: Install) -> dict[str, Any] | None:
    if install.binary is None:
        return None
    real = os.path.realpath(install.binary)
    info: dict[str, Any] = {"path": str(install.binary), "realpath": real}
    try:
        info["sha256"] = _sha256_file(Path(real))
    except OSError as exc:
        info["sha256_error"] = exc.strerror
    return info


def _manifest(case: Case, install: Install, sources: Sources, col: _Collector, start_clock: Mapping[str, Any],
              running: bool, sqlite_mode: str, credentials: str, previous: list[str]) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    roots = []
    for r in sources.roots:
        real = os.path.realpath(r.path)
        roots.append({"key": r.key, "path": str(r.path), "realpath": real, "exists": r.path.is_dir(),
                      "shared_temp": r.shared})
    return {
        "schema": SCHEMA,
        "case_id": case.id,
        "collector": {"tool": "moltir", "version": __version__, "user": user, "uid": os.getuid(),
                      "euid": os.geteuid(), "sudo_user": os.environ.get("SUDO_USER"), "host": socket.gethostname(),
                      "platform": platform.platform(), "python": platform.python_version(), "pid": os.getpid()},
        "install": install.describe(),
        "openclaw_binary": _binary_info(install),
        "install_owner_uid": sources.expected_uid,
        "options": {"credentials": credentials, "journal": bool(sources.units) or None},
        "clock": {"started": dict(start_clock), "finished": _clock()},
        "gateway_running": running,
        "sqlite": sqlite_mode,
        "audit_ledger": col.ledger,
        "o_noatime_refused": col.noatime_refused,
        "roots": roots,
        "rules": [{"root": r.root, "pattern": r.pattern, "category": r.category, "note": r.note}
                  for r in RULES if install.product in r.products],
        "journal_units": list(sources.units),
        "notes": [*sources.notes, *col.notes],
        "sealed_in_place": ("evidence/ outside " + ", ".join(OWN_DIRS) + "; " + ", ".join(COVERED_CASE_DIRS)
                            + "; " + ", ".join(COVERED_CASE_FILES)),
        "previous_attempts": previous,
        "counts": {"files": col.count, "bytes": col.bytes, "listed": len(col.listed),
                   "skipped": len(col.skipped), "changed_during_copy": len(col.changed)},
        "files": FILES_PLACEHOLDER,  # streamed from the collector's spool by _seal
        "listed": col.listed,
        "skipped": col.skipped,
    }


def _hashed(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _manifest_chunks(manifest: Mapping[str, Any], col: _Collector) -> Iterator[bytes]:
    """``_dump(manifest)`` with its ``files`` list streamed from the spool: byte for byte what
    json.dumps would give for the list of entries (each spooled line is that entry's _dump)."""
    head, sep, tail = _dump(manifest).partition(json.dumps(FILES_PLACEHOLDER).encode())
    if not sep:
        raise AssertionError("manifest without its files placeholder")  # pragma: no cover
    yield head + b"["
    first = True
    for line in col.entries():
        yield (b"" if first else b",") + line.rstrip(b"\n")
        first = False
    yield b"]" + tail


def _sums_chunks(col: _Collector, case_dir: Path) -> Iterator[bytes]:
    """SHA256SUMS lines from the spool; the files of covered case dirs are made read-only on the way
    (copies already are)."""
    for line in col.entries():
        f = json.loads(line)
        if str(f["source"]).startswith("case:"):
            with contextlib.suppress(OSError):
                os.chmod(case_dir / f["path"], 0o400)
        yield sums_line(f["sha256"], f["path"])
