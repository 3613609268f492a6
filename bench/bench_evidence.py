"""Benchmark: evidence.snapshot of a big log versus ``cp -a`` + ``sha256sum``, and peak RSS.

    .venv/bin/python bench/bench_evidence.py [--size-mib 1024] [--rounds 3] [--dir DIR]

Each round syncs, then times (a) a full moltir snapshot of an isolated OpenClaw layout
holding one SIZE MiB log, in a child process whose peak RSS is read from getrusage, and
(b) ``cp -a`` of the same file followed by ``sha256sum`` of the copy. Reports the medians.
The snapshot flushes its copies with syncfs() before writing the manifest; for a fair
comparison (b) is followed by ``sync`` as well (both timings include it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys, time
from pathlib import Path
from moltir.case import Case
from moltir.openclaw import discover
from moltir import evidence
base = Path(sys.argv[1]); case_dir = Path(sys.argv[2])
env = {"HOME": str(base / "home"), "TMPDIR": str(base / "tmp"), "PATH": "/usr/bin:/bin"}
install = discover(env=env)
case = Case.create(case_dir, kind="bench", install_info=install.describe(), reason="bench")
t = time.monotonic()
res = evidence.snapshot(case, install, case.journal(), collect_journal=False, gateway_running=False,
                        progress=False)
print(time.monotonic() - t, res.bytes)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp dir under the repo's .cache)")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    scratch = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-evidence-",
                                                                    dir=repo / ".cache" / "tmp"))
    (scratch / "tmp").mkdir(parents=True, exist_ok=True)
    logs = scratch / "home" / ".openclaw" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (scratch / "home" / ".openclaw" / "openclaw.json").write_text("{}\n")
    big = logs / "big.log"
    if not big.exists() or big.stat().st_size != args.size_mib << 20:
        with big.open("wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                fh.write(block)
    subprocess.run(["sync"], check=True)

    ours: list[float] = []
    theirs: list[float] = []
    peak: list[int] = []
    for i in range(args.rounds):
        case_dir = scratch / f"case-{i}"
        subprocess.run(["sync"], check=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.monotonic()
        out = subprocess.run([sys.executable, "-c", CHILD, str(scratch), str(case_dir)], check=True,
                             capture_output=True, text=True).stdout
        ours.append(time.monotonic() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        peak.append(max(after, before))  # KiB; RUSAGE_CHILDREN is the max over children so far
        print(f"round {i}: moltir snapshot {ours[-1]:.2f} s (in-process {float(out.split()[0]):.2f} s)")

        copy = scratch / f"cp-{i}.log"
        subprocess.run(["sync"], check=True)
        t = time.monotonic()
        subprocess.run(["cp", "-a", str(big), str(copy)], check=True)
        subprocess.run(["sha256sum", str(copy)], check=True, capture_output=True)
        subprocess.run(["sync"], check=True)
        theirs.append(time.monotonic() - t)
        print(f"round {i}: cp -a + sha256sum + sync {theirs[-1]:.2f} s")
        copy.unlink()
        subprocess.run(["chmod", "-R", "u+w", str(case_dir)], check=True)
        shutil.rmtree(case_dir)

    print(f"median: moltir {statistics.median(ours):.2f} s, cp -a + sha256sum {statistics.median(theirs):.2f} s "
          f"for {args.size_mib} MiB; peak RSS of the snapshot process {max(peak) / 1024:.1f} MiB")
    if not args.dir:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
