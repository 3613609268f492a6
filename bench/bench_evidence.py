"""Benchmark: evidence snapshot and verify against ``cp -a`` + ``sha256sum`` / ``sha256sum -c``.

    .venv/bin/python -m bench.bench_evidence [--size-mib 1024] [--transcripts 20000] [--logs 4]
                                             [--rounds 3] [--dir DIR] [--json FILE]

Generates an isolated OpenClaw state of SIZE MiB: TRANSCRIPTS small JSONL transcripts under
``agents/*/sessions/`` plus LOGS large logs under ``logs/`` that make up the rest. Then, round
after round (A then B), each in its own child process whose peak RSS is read with ``wait4``:

* A: ``moltir contain --yes --runbook bench/snapshot.json5`` (one ``evidence.snapshot`` step:
  plan, lock, copy + hash in one pass, manifest, SHA256SUMS, seal, verify) -- the whole
  command, as an operator runs it;
* B: ``cp -a STATE DEST`` then ``sha256sum`` of every copied file, then ``sync`` (the snapshot
  flushes its copies with syncfs() before it seals, so the baseline flushes too);
* V: ``moltir evidence verify CASE`` against ``sha256sum -c --quiet SUMS``.

One untimed baseline pass warms up first. Before each timed command ``sync`` runs (untimed)
so neither side pays for the other's dirty pages. Copies are only removed at the end: on this
VM's ext4 (mounted with ``discard``) a big ``rm -rf`` makes the next seconds of file creation
several times slower, whoever creates. The page cache is not dropped (that needs root and
would measure the disk): both sides read warm data. Scratch data lives under ``.cache/bench``
(or ``--dir``) and is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    MOLTIR,
    PYTHON,
    REPO,
    Series,
    check,
    dump_json,
    log,
    remove_tree,
    run_measured,
    scratch_dir,
    sync,
)

RUNBOOK = REPO / "bench" / "snapshot.json5"
AGENTS = ("main", "ops", "research", "support")


@dataclass
class EvidenceResults:
    snapshot: Series = field(default_factory=lambda: Series("moltir snapshot (contain --runbook snapshot)"))
    snapshot_step: Series = field(default_factory=lambda: Series("moltir snapshot step (journal)"))
    snapshot_rss: Series = field(default_factory=lambda: Series("moltir snapshot peak RSS", "MiB"))
    baseline: Series = field(default_factory=lambda: Series("cp -a + sha256sum + sync"))
    baseline_rss: Series = field(default_factory=lambda: Series("cp -a + sha256sum peak RSS", "MiB"))
    verify: Series = field(default_factory=lambda: Series("moltir evidence verify"))
    verify_rss: Series = field(default_factory=lambda: Series("moltir evidence verify peak RSS", "MiB"))
    sha_check: Series = field(default_factory=lambda: Series("sha256sum -c"))
    files: int = 0
    bytes: int = 0
    transcripts: int = 0
    logs: int = 0
    generate_s: float = 0.0
    rss_floor_mib: float = 0.0  # what bench/launch.py reports for `true`
    mkdirs_repeat_s: float = 0.0  # evidence._mkdirs once per file on an existing destination dir (see report)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.to_dict() if isinstance(v, Series) else v) for k, v in self.__dict__.items()}


def _transcript(rng: random.Random, size: int, session: str) -> bytes:
    """Plausible transcript lines (session header, messages) padded to about ``size`` bytes."""
    lines = [json.dumps({"type": "session", "version": 3, "id": session, "timestamp": "2026-09-10T08:00:00.000Z"})]
    total = len(lines[0]) + 1
    n = 0
    while total < size:
        role = "user" if n % 2 == 0 else "assistant"
        text = rng.randbytes(min(600, max(16, size - total)) // 2).hex()
        line = json.dumps({"type": "message", "timestamp": f"2026-09-10T08:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                           "message": {"role": role, "content": [{"type": "text", "text": text}]}})
        lines.append(line)
        total += len(line) + 1
        n += 1
    return ("\n".join(lines) + "\n").encode()


def generate(base: Path, size_mib: int, transcripts: int, logs: int, seed: int = 9) -> tuple[int, int]:
    """Lay out ``base/home/.openclaw`` (state) with the transcripts and the logs; (files, bytes)."""
    rng = random.Random(seed)
    state = base / "home" / ".openclaw"
    (base / "tmp").mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state / "openclaw.json").write_text('{ gateway: { mode: "local", port: 18789 } }\n')
    files, total = 1, (state / "openclaw.json").stat().st_size
    target = size_mib << 20
    # transcripts: 2-14 KiB each (about 8 KiB on average)
    for i in range(transcripts):
        agent = AGENTS[i % len(AGENTS)]
        sessions = state / "agents" / agent / "sessions"
        if i < len(AGENTS):
            sessions.mkdir(parents=True, exist_ok=True)
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        data = _transcript(rng, rng.randint(2 << 10, 14 << 10), sid)
        (sessions / f"{sid}.jsonl").write_bytes(data)
        files += 1
        total += len(data)
    # large logs share the rest
    (state / "logs").mkdir(exist_ok=True)
    rest = max(0, target - total)
    block = os.urandom(1 << 20)
    for j in range(logs):
        size = rest // logs + (rest % logs if j == logs - 1 else 0)
        with (state / "logs" / f"gateway-{j}.log").open("wb") as fh:
            left = size
            while left > 0:
                chunk = block[: min(left, len(block))]
                fh.write(chunk)
                left -= len(chunk)
        files += 1
        total += size
    return files, total


def _env(base: Path) -> dict[str, str]:
    """An isolated install (no openclaw on PATH: discovery reads the state dir, nothing runs)."""
    return {"HOME": str(base / "home"), "TMPDIR": str(base / "tmp"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "MOLTIR_HOME": str(base / "moltir-home"), "XDG_STATE_HOME": str(base / "xdg" / "state"),
            "XDG_CONFIG_HOME": str(base / "xdg" / "config"), "XDG_CACHE_HOME": str(base / "xdg" / "cache")}


def _journal_step(case: Path, step: str) -> float:
    start = done = 0
    for line in (case / "journal.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("step") == step and rec["event"] == "step.start":
            start = rec["mono_ns"]
        if rec.get("step") == step and rec["event"] == "step.done":
            done = rec["mono_ns"]
    if not (start and done):
        raise RuntimeError(f"no step.start/step.done for {step} in {case}/journal.jsonl")
    return (done - start) / 1e9


BASELINE_SNAPSHOT = r"""
set -euo pipefail
cp -a "$1" "$2"
cd "$2"
find . -type f -print0 | xargs -0 sha256sum > "$3"
sync
"""


def mkdirs_repeat(base: Path, state: Path, files: int) -> float:
    """What ``evidence._mkdirs`` costs when called once per file for a directory that exists
    (what a snapshot does for every transcript in a sessions folder), without a profiler."""
    from moltir.evidence import _mkdirs, evidence_rel

    target = base / "mkdirs-probe"
    target.mkdir()
    rel = evidence_rel(str(state / "agents" / AGENTS[0] / "sessions" / "x.jsonl")).rpartition("/")[0]
    _mkdirs(target, rel)
    t0 = time.perf_counter()
    for _ in range(files):
        _mkdirs(target, rel)
    return time.perf_counter() - t0


def measure(size_mib: int = 1024, transcripts: int = 20000, logs: int = 4, rounds: int = 3,
            scratch: Path | None = None, profile: Path | None = None,
            profile_if: Callable[[EvidenceResults], bool] | None = None) -> EvidenceResults:
    """The rounds; then, with ``profile`` (and ``profile_if(results)`` true, if given), one more
    snapshot of the same data under cProfile (not counted), written to that file."""
    res = EvidenceResults(transcripts=transcripts, logs=logs)
    base = scratch or scratch_dir("evidence-")
    try:
        log(f"evidence: generating {size_mib} MiB ({transcripts} transcripts + {logs} logs) in {base}")
        t0 = time.perf_counter()
        res.files, res.bytes = generate(base, size_mib, transcripts, logs)
        sync()
        res.generate_s = time.perf_counter() - t0
        state = base / "home" / ".openclaw"
        env = _env(base)
        res.rss_floor_mib = check(run_measured(["true"]), "true").maxrss_kib / 1024
        # warm-up (untimed): one baseline pass, so the first timed run does not pay for the
        # generator's freshly written, just-synced files
        sync()
        check(run_measured(["bash", "-c", BASELINE_SNAPSHOT, "warm-up", str(state), str(base / "warm"),
                            str(base / "warm.sha256")]), "warm-up cp -a + sha256sum")
        for i in range(rounds):
            case = base / f"case-{i}"
            sync()
            m = check(run_measured([MOLTIR, "contain", "--yes", "--runbook", str(RUNBOOK), "--case-dir", str(case),
                                    "--reason", "bench"], env=env, cwd=base), "moltir contain (snapshot)")
            res.snapshot.add(m.elapsed_s)
            res.snapshot_rss.add(m.maxrss_kib / 1024)
            res.snapshot_step.add(_journal_step(case, "snapshot"))
            log(f"evidence round {i}: A moltir snapshot {m.elapsed_s:.2f} s, peak RSS {m.maxrss_kib / 1024:.1f} MiB")

            dest = base / f"cp-{i}"
            sums = base / f"cp-{i}.sha256"
            sync()
            b = check(run_measured(["bash", "-c", BASELINE_SNAPSHOT, "baseline", str(state), str(dest), str(sums)]),
                      "cp -a + sha256sum")
            res.baseline.add(b.elapsed_s)
            res.baseline_rss.add(b.maxrss_kib / 1024)
            log(f"evidence round {i}: B cp -a + sha256sum {b.elapsed_s:.2f} s, peak RSS {b.maxrss_kib / 1024:.1f} MiB")

            sync()
            v = check(run_measured([MOLTIR, "evidence", "verify", str(case)], env=env, cwd=base),
                      "moltir evidence verify")
            res.verify.add(v.elapsed_s)
            res.verify_rss.add(v.maxrss_kib / 1024)
            c = check(run_measured(["sha256sum", "-c", "--quiet", str(sums)], cwd=dest), "sha256sum -c")
            res.sha_check.add(c.elapsed_s)
            log(f"evidence round {i}: V moltir evidence verify {v.elapsed_s:.2f} s, sha256sum -c {c.elapsed_s:.2f} s")
        if profile is not None and (profile_if is None or profile_if(res)):
            res.mkdirs_repeat_s = mkdirs_repeat(base, state, res.files)
            sync()
            check(run_measured([PYTHON, "-m", "cProfile", "-o", str(profile), "-m", "moltir", "contain", "--yes",
                                "--runbook", str(RUNBOOK), "--case-dir", str(base / "case-profile"),
                                "--reason", "bench"], env=env, cwd=base), "moltir contain (snapshot, profiled)")
    finally:
        if scratch is None:
            remove_tree(base)
        else:  # a --dir the caller chose: keep the folder itself, drop what we generated
            for child in base.iterdir():
                remove_tree(child) if child.is_dir() else child.unlink()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--transcripts", type=int, default=20000)
    ap.add_argument("--logs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None,
                    help="scratch folder (default: a temp dir under the repo's .cache/bench)")
    ap.add_argument("--json", type=Path, help="write the raw samples here")
    args = ap.parse_args()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    res = measure(args.size_mib, args.transcripts, args.logs, args.rounds, args.dir)
    print(f"{res.files} files, {res.bytes / (1 << 20):.0f} MiB")
    for s in (res.snapshot, res.baseline, res.snapshot_rss, res.baseline_rss, res.verify, res.sha_check):
        print(f"{s.name}: median {s.median:.2f} {s.unit} [{s.lo:.2f}-{s.hi:.2f}] n={s.n}")
    if args.json:
        dump_json(args.json, res.to_dict())


if __name__ == "__main__":
    main()
