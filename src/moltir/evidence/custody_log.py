"""The case's custody log (``custody.jsonl``): :func:`custody` appends who/when/why."""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import socket
from pathlib import Path
from typing import Any

from moltir.engine.journal import Journal
from moltir.errors import usage_error
from moltir.evidence.layout import CUSTODY


def custody(case_dir: Path, note: str, *, action: str = "note", **fields: Any) -> dict[str, Any]:
    """Append who/when/why to the case's custody log (hash-chained JSONL, like the journal)."""
    case_dir = Path(case_dir)
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    if not note.strip():
        raise usage_error("the custody note is empty", "say who took custody and why: --note TEXT")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    seal_hash = None
    with contextlib.suppress(OSError):
        seal_hash = hashlib.sha256((case_dir / "seal.json").read_bytes()).hexdigest()
    return Journal(case_dir / CUSTODY).append(
        f"custody.{action}", note=note.strip(), user=user, uid=os.getuid(), sudo_user=os.environ.get("SUDO_USER"),
        host=socket.gethostname(), seal_sha256=seal_hash, **fields)
