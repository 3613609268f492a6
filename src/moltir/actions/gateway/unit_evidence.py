"""What a systemd unit's gateway leaves that stopping it destroys, kept in the case BEFORE the stop.

* the unit file and its drop-ins, as systemd sees them (``systemctl cat UNIT``) ->
  ``volatile/unit-<unit>.txt``;
* with ``PrivateTmp=yes`` (openclaw-ansible's unit) the gateway's file logs live in the unit's
  private /tmp (``/tmp/systemd-private-<boot>-<unit>-<rand>/tmp/openclaw/`` from the host), which
  systemd deletes when the unit stops: they are copied from ``/proc/<gateway pid>/root/tmp/`` (the
  gateway's own view) into ``volatile/private-tmp/``, with the rules of the shared /tmp: the
  folder must not be a symlink, only regular files owned by the gateway's user are taken, none
  through a symlink, each at most :data:`MAX_FILE_BYTES`.

``volatile/`` is sealed with the case's evidence, so these copies are hashed like every source.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any, Final

from moltir.actions.base import StepContext

MAX_FILE_BYTES: Final = 256 << 20
LOG_DIRS: Final = ("openclaw", "clawdbot")


def keep_unit_evidence(ctx: StepContext, manager: Any, info: Any, gproc: Any) -> dict[str, Any]:
    """Write the unit's files and its private-tmp logs into the case; returns what was kept."""
    kept: dict[str, Any] = {"unit": info.name, "scope": info.scope}
    res = manager.systemctl("cat", "--no-pager", info.name)
    if res.ok and res.stdout:
        rel = f"volatile/unit-{_safe(info.name)}.txt"
        ctx.case.write_file(rel, res.stdout.encode("utf-8"), overwrite=True)
        kept["unit_files"] = rel
    if str(info.properties.get("PrivateTmp", "")).lower() in ("yes", "true", "1"):
        kept["private_tmp"] = _copy_private_tmp(ctx, gproc)
    return kept


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name)[:120]


def _copy_private_tmp(ctx: StepContext, gproc: Any) -> dict[str, Any]:
    try:
        uid = gproc.uids().real
        pid = gproc.pid
    except Exception:  # psutil errors: the process is gone
        return {"copied": [], "skipped": ["the gateway process exited before its private /tmp was read"]}
    root = Path(f"/proc/{pid}/root/tmp")
    names = [d for d in LOG_DIRS] + [f"openclaw-{uid}"]
    copied: list[str] = []
    skipped: list[str] = []
    for name in names:
        folder = root / name
        try:
            st = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            skipped.append(f"/tmp/{name}: not a folder owned by uid {uid} (a symlink or planted): not read")
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            rel = f"volatile/private-tmp/{name}/{_safe(entry.name)}"
            why = _copy_one(ctx, Path(entry.path), uid, rel)
            (skipped if why else copied).append(f"/tmp/{name}/{entry.name}" + (f": {why}" if why else ""))
    return {"from": f"/proc/{pid}/root/tmp", "copied": copied, "skipped": skipped}


def _copy_one(ctx: StepContext, path: Path, uid: int, rel: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return f"not opened ({exc.strerror})"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if st.st_uid != uid:
            return f"owned by uid {st.st_uid}, not the gateway's"
        if st.st_size > MAX_FILE_BYTES:
            return f"{st.st_size} bytes, over the {MAX_FILE_BYTES >> 20} MiB bound"
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    ctx.case.write_file(rel, b"".join(chunks), overwrite=True)
    return None
