"""``make bench``: run every benchmark, side by side with its baseline, and write bench/RESULTS.md.

    .venv/bin/python -m bench.run [--budget-s 570] [--only NAME,...] [--quick] [--out FILE]

Order: cold start, JSON5 editor, evidence, time to contain, triage (its data, ~1 GiB, is generated
once and kept under ``.cache/bench/``; MOLTIR_BENCH_TRIAGE_MIB picks a smaller size). The contain benchmark is the only
one whose baseline can take minutes (one ``openclaw config set`` per DM path); it gets what is
left of the budget (see :func:`bench.bench_contain.measure`), so ``make bench`` stays under
10 minutes on this 2-core machine. Where a goal is missed, one extra run under cProfile is
made and its top entries go into the report. Raw samples: ``.cache/bench/results.json``.

``--quick`` (small data, one or two rounds, no per-path baseline) is for trying the bench
out; it writes ``.cache/bench/RESULTS-quick.md`` unless ``--out`` says otherwise.

A run of a few benchmarks (``--only triage``, say) does not drop the others' sections from the file:
its output goes into a block of its own (:mod:`bench.results_file`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import report, results_file
from bench.common import REPO, dump_json, log, machine, scratch_root

NAMES = ("coldstart", "json5", "evidence", "contain", "triage")
DEFAULT = NAMES[:4]  # triage (~1 GiB, tens of minutes here) only when asked: --only triage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("MOLTIR_BENCH_BUDGET_S", "570")),
                    help="wall-clock budget for the whole run (the contain bench adapts its rounds to it)")
    ap.add_argument("--only", default=",".join(DEFAULT),
                    help=f"comma-separated subset of {', '.join(NAMES)} (default: all but triage)")
    ap.add_argument("--quick", action="store_true", help="small data, few rounds: for trying the bench out")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(only) - set(NAMES)
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    out = args.out or (scratch_root() / "RESULTS-quick.md" if args.quick else REPO / "bench" / "RESULTS.md")
    began = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    info: dict[str, Any] = {"machine": machine(), "started": started_at.isoformat(timespec="seconds"),
                            "quick": args.quick, "budget_s": args.budget_s, "only": only}
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    prof_dir = scratch_root() / "profiles"
    prof_dir.mkdir(parents=True, exist_ok=True)
    q = args.quick
    budget: float = args.budget_s

    def remaining() -> float:
        return budget - (time.monotonic() - began)

    for name in only:
        log(f"== {name} ({remaining():.0f} s of the budget left)")
        t0 = time.monotonic()
        try:
            if name == "coldstart":
                from bench import bench_coldstart
                results[name] = bench_coldstart.measure(rounds=3 if q else 7)
            elif name == "json5":
                from bench import bench_json5
                results[name] = bench_json5.measure(rounds=1 if q else 3, size_kib=128 if q else 1024,
                                                    channels=60 if q else 500, budget_s=90, min_rounds=1 if q else 2)
            elif name == "evidence":
                from bench import bench_evidence
                prof = prof_dir / "evidence.prof"
                prof.unlink(missing_ok=True)
                results[name] = bench_evidence.measure(
                    size_mib=64 if q else 1024, transcripts=1000 if q else 20000, logs=4, rounds=1 if q else 3,
                    profile=prof, profile_if=lambda r: not report.evidence_goals_met(r))
            elif name == "contain":
                from bench import bench_contain
                prof = prof_dir / "contain.prof"
                prof.unlink(missing_ok=True)
                results[name] = bench_contain.measure(
                    rounds=1 if q else 3, budget_s=max(remaining() - 15, 60), per_path_baseline=not q,
                    min_rounds=1 if q else 2, profile=prof, profile_if=lambda r: not report.contain_goals_met(r))
            elif name == "triage":  # MOLTIR_BENCH_TRIAGE_MIB / _ROUNDS: another size or round count
                from bench import bench_triage
                results[name] = bench_triage.measure(
                    size_mib=int(os.environ.get("MOLTIR_BENCH_TRIAGE_MIB", "64" if q else "1024")),
                    rounds=int(os.environ.get("MOLTIR_BENCH_TRIAGE_ROUNDS", "1" if q else "2")))
        except Exception:  # a benchmark that breaks is reported, the others still run
            failures[name] = traceback.format_exc()
            log(f"{name} FAILED:\n{failures[name]}")
        info.setdefault("durations_s", {})[name] = round(time.monotonic() - t0, 1)
    info["elapsed_s"] = round(time.monotonic() - began, 1)
    info["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    dump_json(scratch_root() / ("results-quick.json" if q else "results.json"),
              {"info": info, "failures": failures,
               "results": {k: v.to_dict() for k, v in results.items()}})
    text = report.render(info, results, failures, prof_dir)
    if results_file.is_partial(only, DEFAULT):  # --only a few: the other benchmarks' sections stay
        text = results_file.merged(out.read_text() if out.exists() else None, text, only)
    out.write_text(text)
    log(f"wrote {out} ({info['elapsed_s']:.0f} s in all)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
