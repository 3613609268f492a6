"""Verify a case (:func:`verify`): every hash, missing and extra files, the seal, the journal
chain and the custody log.

After sealing, :func:`verify` is strict on the three snapshot folders (any changed, missing or
extra file fails); elsewhere the sealed files must be unchanged, and files added later (the audit
that runs after the snapshot) are reported as "added after seal" without failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from moltir.engine.journal import GENESIS, line_hash, verify_chain
from moltir.errors import usage_error
from moltir.evidence.cases import case_state
from moltir.evidence.copier import BUF_SIZE, _copy_fd, _sha256_file
from moltir.evidence.layout import (
    COVERED_CASE_FILES,
    CUSTODY,
    EVIDENCE,
    INCOMPLETE,
    OWN_DIRS,
    _tree,
    _tree_iter,
    added_case_files,
    covered_case_files,
    sums_line,
)
from moltir.evidence.manifest_reader import _FileRef, _manifest_files


@dataclass(frozen=True)
class VerifyReport:
    case_dir: Path
    state: str
    files_checked: int
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # seal, manifest, journal, custody, incomplete
    added_after_seal: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.missing or self.extra or self.problems)

    def lines(self) -> list[str]:
        out = [f"changed: {p}" for p in self.mismatched]
        out += [f"missing: {p}" for p in self.missing]
        out += [f"extra (not in the manifest): {p}" for p in self.extra]
        out += list(self.problems)
        return out

    def summary(self) -> str:
        if self.ok:
            return f"{self.case_dir}: evidence ok ({self.files_checked} files, seal, journal chain)"
        parts = []
        for label, items in (("changed", self.mismatched), ("missing", self.missing), ("extra", self.extra)):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        parts += list(self.problems[:3])
        return f"{self.case_dir}: evidence verification failed: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"case_dir": str(self.case_dir), "state": self.state, "ok": self.ok,
                "files_checked": self.files_checked, "mismatched": list(self.mismatched),
                "missing": list(self.missing), "extra": list(self.extra), "problems": list(self.problems),
                "added_after_seal": list(self.added_after_seal)}


def _case_file_size(case_dir: Path, rel: str) -> int | None:
    """Size of a regular file inside the case, or None when it is missing or not a regular file."""
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    try:
        st = os.lstat(os.path.join(case_dir, rel))  # noqa: PTH118 -- once per file: no pathlib
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _hash_case_file(case_dir: Path, rel: str) -> str | None:
    """SHA-256 of a file inside the case, or None when it is missing or not a regular file."""
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    try:
        fd = os.open(case_dir / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest, _ = _copy_fd(fd, None, bytearray(BUF_SIZE), rel, 0, None)
        return digest
    finally:
        os.close(fd)


_OWN_PREFIXES: Final = tuple(f"{EVIDENCE}/{d}/" for d in OWN_DIRS)


@dataclass
class _Tally:
    """What one pass over the manifest's files found (memory does not grow with the number of files)."""

    checked: int = 0
    in_own: int = 0  # listed files under evidence/<own dirs>
    others: set[str] = field(default_factory=set)  # listed files outside evidence/<own dirs> (case files: a few)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    expected: Any = field(default_factory=hashlib.sha256)  # SHA256SUMS as the manifest says it must be
    malformed: bool = False


def verify(case_dir: Path, *, rehash: bool = True) -> VerifyReport:
    """Check every hash, missing and extra files, the seal, the journal chain and the custody log.

    ``rehash=False`` (the snapshot step's own verify, right after it hashed every byte it wrote)
    checks each file's presence, type and size instead of reading it all again; everything else
    (seal, manifest, SHA256SUMS, extra files, journal) is checked the same. ``moltir evidence
    verify`` always re-hashes.
    """
    case_dir = Path(case_dir)
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    state = case_state(case_dir)
    problems: list[str] = []
    if state == "no evidence":
        return VerifyReport(case_dir, state, 0, problems=("no evidence snapshot in this case",))
    if state == "incomplete":
        reason = ""
        with contextlib.suppress(OSError, ValueError):
            reason = str(json.loads((case_dir / EVIDENCE / INCOMPLETE).read_text()).get("reason", ""))
        problems.append(f"evidence/INCOMPLETE: the snapshot did not finish ({reason or 'no reason recorded'})")
    seal = _read_seal(case_dir, problems)
    try:
        tally = _tally_files(case_dir, rehash)
        manifest_sha256 = _sha256_file(case_dir / "manifest.json")
    except (OSError, ValueError):
        problems.append("manifest.json is missing or not JSON")
        return VerifyReport(case_dir, state, 0, problems=tuple(problems))
    if seal and seal.get("manifest_sha256") != manifest_sha256:
        problems.append("manifest.json does not match seal.json (changed after sealing)")
    problems += _sums_problems(case_dir, seal, tally)
    extra = _extra_files(case_dir, tally)
    added = [p for p in covered_case_files(case_dir) if p not in tally.others and p not in COVERED_CASE_FILES]
    added += added_case_files(case_dir)
    problems += _chain_problems(case_dir, seal)
    return VerifyReport(case_dir, state, tally.checked, tuple(tally.mismatched), tuple(tally.missing), tuple(extra),
                        tuple(problems), tuple(added))


def _read_seal(case_dir: Path, problems: list[str]) -> dict[str, Any]:
    """seal.json, or ``{}`` with the reason added to ``problems``."""
    seal: dict[str, Any] = {}
    try:
        seal = json.loads((case_dir / "seal.json").read_bytes())
    except FileNotFoundError:
        problems.append("seal.json is missing: the evidence was never sealed")
    except (OSError, ValueError):
        problems.append("seal.json is unreadable or not JSON")
    return seal


def _tally_files(case_dir: Path, rehash: bool) -> _Tally:
    """One pass over the manifest, a file entry at a time: each file re-hashed (``rehash``) or its
    presence and size checked. Raises OSError or ValueError when manifest.json cannot be read."""
    tally = _Tally()
    for f in _manifest_files(case_dir / "manifest.json"):
        if not isinstance(f, _FileRef):
            tally.malformed = True
            continue
        tally.checked += 1
        tally.expected.update(sums_line(str(f.sha256), f.path))
        if f.path.startswith(_OWN_PREFIXES):
            tally.in_own += 1
        else:
            tally.others.add(f.path)
        if not rehash:
            size = _case_file_size(case_dir, f.path)
            if size is None:
                tally.missing.append(f.path)
            elif size != f.size:
                tally.mismatched.append(f.path)
            continue
        digest = _hash_case_file(case_dir, f.path)
        if digest is None:
            tally.missing.append(f.path)
        elif digest != f.sha256:
            tally.mismatched.append(f.path)
    return tally


def _sums_problems(case_dir: Path, seal: Mapping[str, Any], tally: _Tally) -> list[str]:
    """SHA256SUMS against the seal and against what the manifest says it must be."""
    problems: list[str] = []
    try:
        sums_sha256 = _sha256_file(case_dir / "SHA256SUMS")
        if seal and seal.get("sha256sums_sha256") != sums_sha256:
            problems.append("SHA256SUMS does not match seal.json (changed after sealing)")
        if sums_sha256 != tally.expected.hexdigest() or tally.malformed:
            problems.append("SHA256SUMS does not match manifest.json")
    except OSError:
        problems.append("SHA256SUMS is missing")
    return problems


def _extra_files(case_dir: Path, tally: _Tally) -> list[str]:
    """Files under evidence/<own dirs> the manifest does not list: the happy path only counts them;
    names are looked up (a set of the listed paths) only when the counts differ."""
    on_disk = sum(1 for d in OWN_DIRS for _ in _tree_iter(case_dir, f"{EVIDENCE}/{d}"))
    if on_disk == tally.in_own - sum(1 for p in tally.missing if p.startswith(_OWN_PREFIXES)):
        return []
    listed = {f.path for f in _manifest_files(case_dir / "manifest.json") if isinstance(f, _FileRef)}
    return [p for d in OWN_DIRS for p in _tree(case_dir, f"{EVIDENCE}/{d}") if p not in listed]


def _chain_problems(case_dir: Path, seal: Mapping[str, Any]) -> list[str]:
    """The journal's hash chain and its anchor in the seal; the custody log's chain."""
    chain = verify_chain(case_dir / "journal.jsonl")
    problems = [f"journal.jsonl: {p}" for p in chain.problems]
    if seal:
        problems += _check_journal_anchor(case_dir, seal)
    if (case_dir / CUSTODY).exists():
        cust = verify_chain(case_dir / CUSTODY)
        problems += [f"{CUSTODY}: {p}" for p in cust.problems]
    return problems


def _check_journal_anchor(case_dir: Path, seal: Mapping[str, Any]) -> list[str]:
    """The seal's journal head must be a line of the journal, and a later line must name the seal."""
    try:
        lines = [ln for ln in (case_dir / "journal.jsonl").read_bytes().split(b"\n") if ln.strip()]
    except OSError:
        return ["journal.jsonl is missing"]
    n = seal.get("journal_records")
    head = seal.get("journal_head")
    if not isinstance(n, int) or n < 0 or n > len(lines):
        return ["seal.json names a journal position the journal does not have (journal truncated?)"]
    actual = line_hash(lines[n - 1]) if n else GENESIS
    if actual != head:
        return [f"journal.jsonl: line {n} does not match the head recorded in seal.json (journal rewritten?)"]
    seal_hash = hashlib.sha256((case_dir / "seal.json").read_bytes()).hexdigest()
    for raw in lines[n:]:
        with contextlib.suppress(ValueError):
            rec = json.loads(raw)
            if rec.get("event") == "evidence.sealed" and rec.get("seal_sha256") == seal_hash:
                return []
    return ["seal.json is not the seal the journal recorded (no matching evidence.sealed event)"]
