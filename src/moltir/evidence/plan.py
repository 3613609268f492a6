"""The plan of a snapshot: what it would take, from directory listings and lstat only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moltir.evidence.copier import _sparse_suspect
from moltir.evidence.roots import resolve_roots
from moltir.evidence.rules import CredentialMode
from moltir.evidence.walker import Skip, _Walker

if TYPE_CHECKING:
    from moltir.openclaw import Install


@dataclass(frozen=True)
class Estimate:
    roots: tuple[tuple[str, str, bool], ...]  # (key, path, exists)
    files: int
    bytes: int
    listed: int
    skipped: int
    by_category: Mapping[str, int]
    units: tuple[str, ...]
    notes: tuple[str, ...]


def estimate(install: Install, *, credentials: CredentialMode = "list", journal: bool = True,
             exclude: Sequence[Path] = ()) -> Estimate:
    """What a snapshot would take, from directory listings and lstat only (opens no file)."""
    sources = resolve_roots(install, journal=journal)
    walker = _Walker(sources, install.product, exclude)
    files = size = listed = 0
    skipped: set[str] = set()
    by_cat: dict[str, int] = {}
    for root in sources.roots:
        for item in walker.walk(root):
            if isinstance(item, Skip):
                skipped.add(item.source)
                continue
            if item.rule.category == "credential" and credentials != "copy":
                listed += 1
                continue
            if _sparse_suspect(item.lst):  # the snapshot confirms with SEEK_HOLE; the plan opens nothing
                skipped.add(item.source)
                continue
            files += 1
            size += item.lst.st_size
            by_cat[item.rule.category] = by_cat.get(item.rule.category, 0) + item.lst.st_size
    roots = tuple((r.key, str(r.path), r.path.is_dir()) for r in sources.roots)
    return Estimate(roots, files, size, listed, len(skipped) + len(sources.skipped), by_cat, sources.units,
                    sources.notes)
