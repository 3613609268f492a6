"""The gateway's own words when it does not come up: the tail of its log, its last error lines."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from moltir.errors import MoltirError
from moltir.openclaw import Install

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ERRORISH = re.compile(r"error|invalid|fail|blocked|problem|cannot|can't|refus|unrecognized|missing|denied|"
                       r"eaddrinuse|already|exception|fatal|unavailable", re.I)
_BOX = re.compile(r"[│├╮╯╭╰─◇┌└┐┘]+")


def error_lines(text: str, limit: int = 3) -> list[str]:
    """The gateway's own last error-looking lines (ANSI and box drawing removed)."""
    lines: list[str] = []
    for raw in text.splitlines():
        line = _BOX.sub(" ", _ANSI.sub("", raw)).strip()
        if not line or line.startswith("at ") or line.startswith("==="):
            continue
        lines.append(re.sub(r"\s+", " ", line))
    picked = [ln for ln in lines if _ERRORISH.search(ln)]
    out: list[str] = []
    for ln in (picked or lines)[::-1]:
        if ln not in out:
            out.append(ln)
        if len(out) >= limit:
            break
    return out[::-1]


def read_from(path: Path, offset: int, limit: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(limit)
    except OSError:
        return ""
    from moltir.redaction import redact

    return redact(data.decode("utf-8", errors="replace"))


def tail_text(path: Path | None, limit: int = 64 * 1024) -> str:
    if path is None:
        return ""
    try:
        size = path.stat().st_size
    except OSError:
        return ""
    return read_from(path, max(0, size - limit), limit)


def gateway_log(install: Install) -> Path | None:
    """The gateway's own file log: ``logging.file``, else today's default under $TMPDIR/openclaw."""
    try:
        cfg = install.read_config()
    except MoltirError:
        cfg = {}
    logging_cfg = cfg.get("logging")
    path = logging_cfg.get("file") if isinstance(logging_cfg, dict) else None
    if isinstance(path, str) and path:
        return Path(path).expanduser()
    day = dt.date.today().isoformat()
    for folder in install.tmp_log_dirs():
        candidate = folder / f"openclaw-{day}.log"
        if candidate.exists():
            return candidate
    return None
