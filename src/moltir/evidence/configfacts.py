"""What a snapshot needs from the install's config: every ``$include`` reachable from it
(recursively, by OpenClaw's rules in :mod:`moltir.openclaw.includes`; here lenient: what cannot be read
is noted, not refused), ``logging.file`` and ``agents.defaults.workspace``; the gateway's token and
password are registered for redaction on the way. Nothing else of the config is kept in memory."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from moltir.errors import MoltirError
from moltir.openclaw.includes import (
    INCLUDE_KEY,
    MAX_INCLUDE_DEPTH,
    find_includes,
    include_specs,
    include_target,
    too_deep,
)
from moltir.redaction import register

if TYPE_CHECKING:
    from moltir.openclaw import Install

MAX_CONFIG_BYTES: Final = 16 << 20


def _expand_user_path(raw: str, install: Install, base: Path) -> Path:
    text = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lambda m: install.env.get(m.group(1), m.group(0)), raw)
    if text.startswith("~"):
        text = str(install.home) + text[1:]
    path = Path(text)
    return path if path.is_absolute() else base / path


def read_regular_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Read a small regular file without following a final symlink or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class _ConfigFacts:
    """What the snapshot needs from the config: nothing else of it is kept in memory."""

    includes: list[Path] = field(default_factory=list)
    log_file: str | None = None
    workspace: str | None = None  # agents.defaults.workspace (top-level config only)
    notes: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _config_facts(config_path: Path) -> _ConfigFacts:
    """Every ``$include`` reachable from the config (recursively) and ``logging.file``."""
    from moltir.openclaw import parse_config_text

    facts = _ConfigFacts()

    def walk_value(value: Any, owner: Path, level: int) -> None:
        for _where, holder in find_includes(value):
            for spec in include_specs(holder[INCLUDE_KEY]) or []:
                visit(include_target(spec, owner), level + 1)

    def visit(path: Path, depth: int) -> None:
        path = Path(os.path.normpath(path))
        if depth > 0 and (path in facts.includes or path == config_path):
            return
        if too_deep(depth):
            facts.skipped.append({"source": str(path), "category": "config",
                                  "reason": f"$include nested deeper than {MAX_INCLUDE_DEPTH} levels"})
            return
        if depth > 0:
            facts.includes.append(path)
        try:
            data = parse_config_text(read_regular_file(path).decode("utf-8-sig", "replace"), path)
        except OSError as exc:
            if depth == 0 and exc.errno == errno.ENOENT:
                facts.notes.append(f"no config file at {path}")
            elif depth == 0:
                facts.notes.append(f"config not read ({exc.strerror or exc}): $include and logging.file "
                                   "not resolved")
            return  # an unreadable include is reported when the walk meets it (or not, if absent)
        except MoltirError as exc:
            facts.notes.append(f"{path} not parsed ({exc.message}): its $include entries were not resolved")
            return
        if depth == 0:
            _top_level_facts(data, facts)
        walk_value(data, path, depth)
        del data

    visit(config_path, 0)
    return facts


def _top_level_facts(data: Mapping[str, Any], facts: _ConfigFacts) -> None:
    """From the top config: the gateway's token and password (registered for redaction) and ``logging.file``."""
    gw = data.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    for key in ("token", "password"):
        value = auth.get(key) if isinstance(auth, Mapping) else None
        if isinstance(value, str):
            register(value)
    logging_cfg = data.get("logging")
    raw = logging_cfg.get("file") if isinstance(logging_cfg, Mapping) else None
    if isinstance(raw, str) and raw.strip():
        facts.log_file = raw.strip()
    agents = data.get("agents")
    defaults = agents.get("defaults") if isinstance(agents, Mapping) else None
    workspace = defaults.get("workspace") if isinstance(defaults, Mapping) else None
    if isinstance(workspace, str) and workspace.strip():
        facts.workspace = workspace.strip()
