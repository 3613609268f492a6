"""Cases as the evidence commands see them: a case's state and the list of cases."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltir.evidence.layout import EVIDENCE, INCOMPLETE


def case_state(case_dir: Path) -> str:
    """``sealed`` | ``incomplete`` | ``unsealed`` | ``no evidence``."""
    ev = case_dir / EVIDENCE
    if (ev / INCOMPLETE).exists():
        return "incomplete"
    if (case_dir / "seal.json").exists():
        return "sealed"
    if ev.exists():
        return "unsealed"
    return "no evidence"


@dataclass(frozen=True)
class CaseSummary:
    id: str
    path: Path
    state: str
    size: int
    opened_at: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "state": self.state, "size": self.size,
                "opened_at": self.opened_at, "kind": self.kind}


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for fn in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / fn).lstat().st_size
    return total


def summarize(case_dir: Path) -> CaseSummary:
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((case_dir / "case.json").read_bytes())
        info = loaded if isinstance(loaded, dict) else {}
    return CaseSummary(str(info.get("case_id") or case_dir.name), case_dir, case_state(case_dir), _du(case_dir),
                       str(info.get("opened_at") or ""), str(info.get("kind") or ""))


def list_cases(cases_root: Path, extra: Sequence[Path] = ()) -> list[CaseSummary]:
    """Every case under ``cases_root`` plus ``extra`` folders (e.g. from the install index), oldest first."""
    found: dict[str, Path] = {}
    if cases_root.is_dir():
        for p in cases_root.iterdir():
            if (p / "case.json").is_file():
                found[os.path.realpath(p)] = p
    for p in extra:
        if (p / "case.json").is_file():
            found.setdefault(os.path.realpath(p), p)
    out = [summarize(p) for p in found.values()]
    return sorted(out, key=lambda c: (c.opened_at, c.id))
