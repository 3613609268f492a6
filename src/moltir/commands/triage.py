"""``moltir triage``: verify a sealed case, stream its transcripts through the rules, write the
timeline and the findings (to ``CASE/triage/`` or ``-o``), and report.

Read-only on the evidence: transcripts are read from the case's copies (SQLite copies through a
private temporary copy); nothing under the case but ``triage/`` is written, and ``moltir evidence
verify`` lists what is there as added after the seal.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from moltir.errors import usage_error, verify_error
from moltir.triage import report_html
from moltir.triage.cold_source import cold_events
from moltir.triage.config_source import config_events
from moltir.triage.containment import containment
from moltir.triage.device_source import device_events
from moltir.triage.events import Event
from moltir.triage.exposed import CredentialMatcher
from moltir.triage.jsonl_source import jsonl_events, session_index
from moltir.triage.ledger_source import ledger_events
from moltir.triage.log_source import log_events
from moltir.triage.outputs import TimelineWriter, formatted, timeline_row, write_json, write_text
from moltir.triage.policy import Policies
from moltir.triage.rules import LEVELS, Rule, load_rules
from moltir.triage.sources import Catalog, catalog
from moltir.triage.sqlite_source import sqlite_events
from moltir.triage.timeline_sort import SortedRows, sort_key
from moltir.triage.verdicts import Triage

SCHEMA: Final = "moltir.triage/1"
OUT_DIR: Final = "triage"


def events(case_dir: Path, cat: Catalog) -> Iterator[Event]:
    """Every event of the case: JSONL transcripts in path order, each agent database, cold archives, the
    audit ledger, the gateway logs, then the config histories."""
    policies = Policies.load(case_dir, cat)
    matcher = _credential_matcher(case_dir)
    for event in _transcript_events(case_dir, cat):
        yield matcher.annotate(policies.annotate(event))
    for f in cat.ledger:
        yield from ledger_events(case_dir, f)
    for f in cat.logs:
        yield from log_events(case_dir, f)
    for f in cat.devices:
        yield from device_events(case_dir, f)
    for versions in cat.configs.values():
        yield from config_events(case_dir, versions)


def _credential_matcher(case_dir: Path) -> CredentialMatcher:
    """The case's credential values (read from its copies, in memory only) to find in tool results."""
    import secrets

    from moltir.commands.credentials_case import case_credentials
    from moltir.evidence.exposure import Needle
    from moltir.openclaw import credentials as creds

    try:
        key = (case_dir / creds.CASE_KEY).read_bytes()
    except OSError:
        key = secrets.token_bytes(32)
    needles = [Needle(c.cred.id, c.cred.value) for c in case_credentials(case_dir) if c.cred.value]
    return CredentialMatcher(needles, key)


def _transcript_events(case_dir: Path, cat: Catalog) -> Iterator[Event]:
    indexes: dict[str, dict[str, tuple[str, str, str]]] = {}
    for f in cat.jsonl:
        folder = f.path.rsplit("/", 1)[0]
        if folder not in indexes:
            indexes[folder] = session_index(case_dir, cat.indexes.get(folder))
        yield from jsonl_events(case_dir, f, indexes[folder])
    for copy in cat.sqlite:
        yield from sqlite_events(case_dir, copy)
    for f in cat.cold:
        yield from cold_events(case_dir, f)


def _verified(case_dir: Path) -> dict[str, Any]:
    from moltir import evidence

    report = evidence.verify(case_dir)
    if report.state != "sealed" or not report.ok:
        raise verify_error(f"{report.summary()} (state: {report.state})",
                           "triage reads sealed, verified evidence only: run 'moltir evidence verify' for "
                           "every problem; treat this case as tampered with or damaged")
    return {"state": report.state, "files_checked": report.files_checked}


def _out_dir(case_dir: Path, output: Path | None) -> Path:
    out = output if output is not None else case_dir / OUT_DIR
    real, case_real = Path(os.path.realpath(out)), Path(os.path.realpath(case_dir))
    if output is not None and case_real in (real, *real.parents) and real != case_real / OUT_DIR:
        raise usage_error(f"-o {output} is inside the case folder", f"write to {case_dir / OUT_DIR} (the default) "
                          "or to a folder outside the case: the evidence is never written to")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise usage_error(f"{out} is not a folder", "pass -o with a folder (created if missing)")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    return out


def run_triage(case_dir: Path, *, output: Path | None = None, rule_dirs: Sequence[Path] = (),
               min_level: str = "high") -> dict[str, Any]:
    """The triage report (``findings.json``'s content plus where the outputs are)."""
    if min_level not in LEVELS:
        raise usage_error(f"--min-level {min_level!r} is not a level", f"choose one of: {', '.join(LEVELS)}")
    rules = load_rules(rule_dirs)
    verified = _verified(case_dir)
    cat = catalog(case_dir)
    out = _out_dir(case_dir, output)
    tri = Triage(rules, min_level)
    hours: Counter[tuple[str, str]] = Counter()
    with SortedRows(out) as ordered:
        for arrival, (event, hits) in enumerate(tri.feed(events(case_dir, cat))):
            row = timeline_row(event, hits)
            when = None if row.get("time_unknown") else str(row["datetime"])
            ordered.add(sort_key(when, arrival), *formatted(row))
            if when:
                hours[(when[:13], event.channel or "unknown")] += 1
        with TimelineWriter(out) as timeline:
            for json_text, csv_text in ordered.rows():
                timeline.write_lines(json_text, csv_text)
    report = _report(case_dir, out, tri, rules, cat, verified)
    report["containment"] = containment(case_dir)
    write_json(out / "findings.json", report)
    write_text(out / "report.html", report_html.render(report, hours))
    return report


def _report(case_dir: Path, out: Path, tri: Triage, rules: list[Rule], cat: Catalog,
            verified: dict[str, Any]) -> dict[str, Any]:
    counted = tri.counted()
    verdicts = tri.verdicts()
    by_level = Counter(f.rule.level for f in tri.findings)
    return {
        "schema": SCHEMA, "case_dir": str(case_dir), "output_dir": str(out), "evidence": verified,
        "min_level": LEVELS[tri.min_rank], "rules": [{"id": r.id, "level": r.level, "origin": r.origin} for r in rules],
        "sources": {"jsonl_files": len(cat.jsonl), "sqlite_databases": len(cat.sqlite),
                    "cold_archives": len(cat.cold),
                    "ledger_exports": len(cat.ledger),
                    "logs": len(cat.logs), "device_stores": len(cat.devices), "config_histories": len(cat.configs)},
        "no_transcripts": not (cat.jsonl or cat.sqlite or cat.cold),
        "events": tri.events, "undecoded": tri.undecoded, "sessions_seen": len(tri.sessions),
        "counts": {"findings": len(tri.findings), "at_or_above_min_level": len(counted),
                   "by_level": {lvl: by_level[lvl] for lvl in LEVELS if by_level[lvl]},
                   "verdicts": dict(Counter(v["verdict"] for v in verdicts))},
        "sessions": verdicts,
        "findings": [f.to_json() for f in counted],
        "below_min_level": [f.to_json() for f in tri.findings if f not in counted],
        "outputs": {name: str(out / name) for name in ("timeline.jsonl", "timeline.csv", "findings.json",
                                                                   "report.html")},
    }
