"""The gateway's systemd journal, collected with ``journalctl -o json`` (bounded in time, lines and
run time) into ``evidence/journald/``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from moltir.errors import MoltirError
from moltir.evidence.collector import _Collector
from moltir.evidence.copier import _copy_fd, _DestError, _mkdirs
from moltir.evidence.fileinfo import _iso
from moltir.evidence.layout import EVIDENCE

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.openclaw import Install

JOURNAL_MAX_LINES: Final = 200_000
JOURNAL_SINCE: Final = "-30d"
JOURNAL_TIMEOUT_S: Final = 120.0


def _system_units(case: Case) -> list[str]:
    """The system unit that ran the gateway, as gateway.stop recorded it in this case (if any)."""
    try:
        record = case.restore_section("gateway")
    except MoltirError:
        return []
    svc = record.get("service") if isinstance(record, dict) else None
    if isinstance(svc, dict) and svc.get("scope") == "system" and isinstance(svc.get("name"), str):
        return [svc["name"]]
    return []


def _last_cursor(path: Path) -> str | None:
    """The ``__CURSOR`` of the last entry of a ``journalctl -o json`` file (read from its tail)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("__CURSOR"), str):
            return str(entry["__CURSOR"])
    return None


def _collect_journal(col: _Collector, install: Install, unit: str) -> None:
    """``journalctl --user -u <unit> -o json`` (``system:<unit>``: the system journal, without
    ``--user``), streamed through the hasher into the case. Each entry carries its ``__CURSOR`` and
    timestamps; the manifest records the command (time range ``--since``) and the last cursor."""
    scope, _, name = unit.rpartition(":")
    user = scope != "system"
    source = f"journalctl {'--user ' if user else ''}-u {name} -o json"
    rel = f"{EVIDENCE}/journald/{'' if user else 'system-'}{name}.json"
    argv = ["journalctl", *(["--user"] if user else []), "-u", name, "-o", "json", "--no-pager",
            f"--since={JOURNAL_SINCE}", f"--lines={JOURNAL_MAX_LINES}"]
    env = _journal_env(install)
    _mkdirs(col.case_dir, rel.rpartition("/")[0], col.made_dirs)
    tmp = col.case_dir / f"{rel}.partial"
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, close_fds=True)
    except OSError as exc:
        col.skipped.append({"source": source, "category": "journal",
                            "reason": f"journalctl could not run: {exc.strerror}"})
        return
    digest, copied, rc, err_tail = _stream_journal(col, proc, tmp, source, rel)
    first_err = err_tail.decode("utf-8", "replace").strip().splitlines()[:1]
    if copied == 0:
        with contextlib.suppress(OSError):
            tmp.unlink()
        detail = f": {first_err[0]}" if first_err else ""
        if rc == 0:  # nothing logged for that unit (no such unit, no journald): not a skipped source
            col.notes.append(f"{source}: no entries{detail}")
        else:
            col.skipped.append({"source": source, "category": "journal", "reason": f"journalctl: exit {rc}{detail}"})
        return
    try:
        tmp.chmod(0o400)
        tmp.rename(col.case_dir / rel)
        st = (col.case_dir / rel).stat()
    except OSError as exc:
        raise _DestError(exc, rel) from None
    col.add({"path": rel, "source": source, "root": "journald", "category": "journal",
                      "rule": "{unit}", "size": copied, "sha256": digest, "changed_during_copy": False,
                      "command": argv, "exit_code": rc, "killed_after_s": JOURNAL_TIMEOUT_S if rc < 0 else None,
                      "since": JOURNAL_SINCE, "last_cursor": _last_cursor(col.case_dir / rel),
                      "stderr": first_err[0] if first_err else None,
                      "mtime_ns": st.st_mtime_ns, "mtime": _iso(st.st_mtime_ns)})
    col.bytes += copied


def _journal_env(install: Install) -> dict[str, str]:
    """journalctl's environment: the install's user session, no pager."""
    keep = ("PATH", "HOME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "USER", "LOGNAME")
    env = {k: v for k, v in install.env.items() if k in keep}
    env["PATH"] = env.get("PATH", os.defpath) + os.pathsep + os.defpath
    env["SYSTEMD_PAGER"] = ""
    return env


def _stream_journal(col: _Collector, proc: subprocess.Popen[bytes], tmp: Path, source: str,
                    rel: str) -> tuple[str, int, int, bytes]:
    """journalctl's output hashed into ``tmp`` (removed when the copy fails), the process waited for
    (killed after :data:`JOURNAL_TIMEOUT_S`): its digest, size, exit code and the tail of its stderr."""
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    err_tail = bytearray()

    def drain() -> None:
        while chunk := stderr.read(4096):
            err_tail.extend(chunk)
            del err_tail[:-4096]

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    timer = threading.Timer(JOURNAL_TIMEOUT_S, proc.kill)  # a wedged journalctl must not hang the snapshot
    timer.start()
    try:
        try:
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _DestError(exc, str(tmp)) from None
        ok = False
        try:
            digest, copied = _copy_fd(stdout.fileno(), dst, col.buf, source, 0, col.on_chunk, rel)
            ok = True
        finally:
            os.close(dst)
            if not ok:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    finally:
        timer.cancel()
        if proc.poll() is None and not timer.finished.is_set():
            proc.kill()
        rc = proc.wait()
        drainer.join()
        stdout.close()
        stderr.close()
    return digest, copied, rc, bytes(err_tail)
