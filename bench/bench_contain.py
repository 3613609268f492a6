"""Benchmark: time to contain a real openclaw 2026.9.6 gateway, moltir against OpenClaw's own CLI.

    .venv/bin/python -m bench.bench_contain [--rounds 3] [--budget-s 420] [--batch-baseline]

Per round, each side gets a fresh isolated home (tests/harness: the fake Telegram, so the
drain is clean) with a config of 10 channels x 5 accounts (:mod:`bench.contain_config`) and a
freshly started real gateway, then:

* **A: moltir** -- ``moltir contain --yes --runbook bench/contain.json5`` (stop-gateway,
  disable-dms, rotate-token) with the harness's private Secret Service (gnome-keyring). Time to
  contain = journal ``step.start`` of stop-gateway to the moment the last of the three steps is
  in effect (``mono_ns``): its ``step.done``, or ``step.applied`` for a step whose verification
  the engine finishes in the background (gateway.stop's "stays down for settle_s" watch; its
  ``step.done`` comes after). The time until every check is done and the whole command's wall
  time are reported too.
* **B: baseline** -- ``bench/baseline_contain.sh``: ``openclaw gateway stop --force`` (it only
  signals an unmanaged gateway, so the script then waits until the process is gone), one
  ``openclaw config set <path> disabled`` per DM path (60), ``openclaw secrets store set``
  (value on stdin) and the ``config set gateway.auth.token --ref-source store`` that makes the
  gateway use it. Wall time of the script.
* **D: drain** -- the gateway alone: SIGTERM, then ``waitpid`` until it exits.

Every outcome is checked (gateway gone, every path "disabled", token moved) -- a side that did
not contain does not get a time. The baseline is slow (each ``openclaw`` call boots Node and
the CLI), so B rounds stop when the time budget is spent: at least one always runs, and the
report says how many did.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5
from tests.harness.configs import ConfigParams
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.net import port_is_open, wait_until
from tests.harness.procs import kill_leftovers, processes_for
from tests.harness.releases import Release, keyring_missing, release
from tests.harness.secret_service import SecretService, start_secret_service

from bench.common import MOLTIR, PYTHON, REPO, Series, check, dump_json, log, remove_tree, run_measured, scratch_dir
from bench.contain_config import ACCOUNTS, CHANNELS, config_text, dm_paths, telegram_token

RELEASE_ID = "2026.9.6"
RUNBOOK = REPO / "bench" / "contain.json5"
BASELINE = REPO / "bench" / "baseline_contain.sh"
CRITICAL_STEPS = ("stop-gateway", "disable-dms", "rotate-token")


@dataclass
class ContainResults:
    moltir_critical: Series = field(default_factory=lambda: Series("moltir: critical path (journal)"))
    moltir_verified: Series = field(default_factory=lambda: Series("moltir: until every check is done"))
    moltir_wall: Series = field(default_factory=lambda: Series("moltir: `moltir contain` wall"))
    moltir_steps: dict[str, Series] = field(default_factory=dict)
    moltir_in_run_drain: Series = field(default_factory=lambda: Series("moltir: SIGTERM -> gateway.stopped"))
    moltir_overhead: Series = field(default_factory=lambda: Series("moltir: critical path - own run's drain"))
    moltir_pre_signal: Series = field(default_factory=lambda: Series("moltir: step start -> SIGTERM"))
    moltir_stop_verify: Series = field(default_factory=lambda: Series("moltir: gateway.stopped -> stop step applied"))
    moltir_watch: Series = field(default_factory=lambda: Series("moltir: respawn watch (applied -> done)"))
    baseline: Series = field(default_factory=lambda: Series("baseline: script wall"))
    baseline_phases: dict[str, Series] = field(default_factory=dict)
    baseline_per_set: Series = field(default_factory=lambda: Series("baseline: one `openclaw config set`"))
    batch: Series = field(default_factory=lambda: Series("baseline (batch): script wall"))
    batch_phases: dict[str, Series] = field(default_factory=dict)
    drain: Series = field(default_factory=lambda: Series("gateway alone: SIGTERM -> exit"))
    gateway_start: Series = field(default_factory=lambda: Series("gateway start (not timed in A/B)"))
    notes: list[str] = field(default_factory=list)
    paths: int = 0
    rounds_planned: int = 0
    budget_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Series):
                out[key] = value.to_dict()
            elif isinstance(value, dict):
                out[key] = {k: v.to_dict() for k, v in value.items()}
            else:
                out[key] = value
        return out


# ---- homes ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def bench_home(root: Path, rel: Release, ss: SecretService) -> Iterator[OpenClawHome]:
    """A fresh harness home whose config is the 10 x 5 one; its processes are gone afterwards."""
    home = create_home(root, rel)
    try:
        params = ConfigParams(port=home.port, token=home.token, log_file=str(home.log_file),
                              telegram_url=home.telegram.url, llm_base_url=home.llm.base_url)
        home.config_path.write_text(config_text(params), encoding="utf-8")
        home.config_path.chmod(0o600)
        home.env.update(ss.env)  # gateway and moltir share the private keyring
        home.env["MOLTIR_HOME"] = str(root / "moltir-home")
        yield home
    finally:
        close_home(home)
        kill_leftovers(home.state_dir)
        left = processes_for(home.state_dir)
        if left:
            raise RuntimeError(f"processes of {home.state_dir} survived: {[p.pid for p in left]}")


def started(home: OpenClawHome, res: ContainResults) -> Gateway:
    """A running gateway whose start-up is over: the harness returns once the token is accepted
    and the first Telegram bot polls; this also waits until all six bots poll the fake, so no
    side stops a gateway that is still starting channels (that makes the drain slower)."""
    t0 = time.monotonic()
    gw = Gateway(home).start()
    bots = {telegram_token(i).split(":", 1)[0] for i in range(len(ACCOUNTS) + 1)}

    def all_polling() -> bool:
        with home.telegram.lock:
            polled = {bot for bot, method in home.telegram.calls if method == "getUpdates"}
        return bots <= polled

    try:
        wait_until(all_polling, 60, interval=0.05, what="every telegram bot to poll the fake Bot API")
    except TimeoutError:
        gw.stop()
        raise
    res.gateway_start.add(time.monotonic() - t0)
    if gw.token_status(home.token) != 400:
        gw.stop()
        raise RuntimeError("the gateway does not accept its token after start")
    return gw


def _get(doc: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return "<absent>"
        doc = doc[key]
    return doc


def check_contained(home: OpenClawHome, gw: Gateway, who: str) -> dict[str, Any]:
    """Gateway gone (process and port), every DM path "disabled"; returns the parsed config."""
    if gw.proc is not None and gw.proc.poll() is None:
        raise RuntimeError(f"{who}: the gateway process {gw.pid} is still running")
    if port_is_open(home.port):
        raise RuntimeError(f"{who}: port {home.port} still answers")
    cfg = json5.loads(home.config_path.read_text(encoding="utf-8"))
    wrong = [p for p in dm_paths() if _get(cfg, p) != "disabled"]
    if wrong:
        raise RuntimeError(f"{who}: {len(wrong)} DM paths not disabled, e.g. {wrong[:3]}")
    assert isinstance(cfg, dict)
    return cfg


# ---- A: moltir -----------------------------------------------------------------------------------

def _records(case: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines() if line.strip()]


def run_moltir(root: Path, rel: Release, ss: SecretService, res: ContainResults, rnd: int, *,
               prof: Path | None = None) -> None:
    """One A round; with ``prof``, an extra round under cProfile whose times are not recorded."""
    with bench_home(root, rel, ss) as home:
        gw = started(home, res)
        try:
            case = root / "case"
            argv = [MOLTIR] if prof is None else [PYTHON, "-m", "cProfile", "-o", str(prof), "-m", "moltir"]
            m = check(run_measured([*argv, "contain", "--yes", "--runbook", str(RUNBOOK), "--case-dir", str(case),
                                    "--reason", "bench"], env=home.env, cwd=home.home, timeout=300),
                      "moltir contain")
            if gw.proc is not None:
                gw.proc.wait(timeout=30)  # reap (moltir signalled it; it exited already)
            cfg = check_contained(home, gw, "moltir")
            token = _get(cfg, "gateway.auth.token")
            if token == home.token or not isinstance(token, dict):
                raise RuntimeError(f"moltir: gateway.auth.token was not moved to a SecretRef ({type(token).__name__})")
            recs = _records(case)
            start = {r["step"]: r["mono_ns"] for r in recs if r["event"] == "step.start"}
            done = {r["step"]: r for r in recs if r["event"] == "step.done"}
            # a step whose verification is deferred (gateway.stop: "stays down for settle_s") is
            # journaled step.applied once it is in effect and its immediate checks passed; the
            # engine runs the next steps meanwhile and journals step.done when the watch ends
            applied = {r["step"]: r for r in recs if r["event"] == "step.applied"}
            for step in CRITICAL_STEPS:
                if step not in done or done[step].get("status") not in ("done", "forced"):
                    raise RuntimeError(f"moltir: step {step} not done: {done.get(step)}")
            effect = {step: applied.get(step, done[step])["mono_ns"] for step in CRITICAL_STEPS}
            crit = (max(effect.values()) - start["stop-gateway"]) / 1e9
            if prof is not None:
                log(f"profiled moltir contain: critical path {crit:.3f} s under cProfile (not counted)")
                return
            res.moltir_critical.add(crit)
            res.moltir_verified.add((max(r["mono_ns"] for r in done.values()) - start["stop-gateway"]) / 1e9)
            res.moltir_wall.add(m.elapsed_s)
            for step in CRITICAL_STEPS:
                res.moltir_steps.setdefault(step, Series(f"moltir step {step} (start -> in effect)")).add(
                    (effect[step] - start[step]) / 1e9)
            if "stop-gateway" in applied:
                res.moltir_watch.add((done["stop-gateway"]["mono_ns"] - applied["stop-gateway"]["mono_ns"]) / 1e9)
            ev = {r["event"]: r["mono_ns"] for r in recs}
            if "gateway.sigterm" in ev and "gateway.stopped" in ev:
                res.moltir_in_run_drain.add((ev["gateway.stopped"] - ev["gateway.sigterm"]) / 1e9)
                res.moltir_overhead.add(crit - (ev["gateway.stopped"] - ev["gateway.sigterm"]) / 1e9)
                res.moltir_pre_signal.add((ev["gateway.sigterm"] - start["stop-gateway"]) / 1e9)
                res.moltir_stop_verify.add((effect["stop-gateway"] - ev["gateway.stopped"]) / 1e9)
            steps = ", ".join(f"{k} {v.samples[-1]:.3f}" for k, v in res.moltir_steps.items())
            log(f"round {rnd}: A moltir critical path {crit:.3f} s (wall {m.elapsed_s:.3f} s; {steps})")
        finally:
            gw.stop()


# ---- B: baseline ---------------------------------------------------------------------------------

def run_baseline(root: Path, rel: Release, ss: SecretService, res: ContainResults, rnd: int, *,
                 batch: bool) -> float:
    t_all = time.monotonic()
    with bench_home(root, rel, ss) as home:
        gw = started(home, res)
        try:
            paths_file = root / "dm-paths.txt"
            paths_file.write_text("\n".join(dm_paths()) + "\n")
            times = root / "times.txt"
            env = {**home.env, "OPENCLAW": str(home.openclaw_bin), "GATEWAY_PID": str(gw.pid),
                   "GATEWAY_PORT": str(home.port), "DM_PATHS_FILE": str(paths_file), "TIMES_FILE": str(times),
                   "BATCH": "1" if batch else "0"}
            m = check(run_measured(["bash", str(BASELINE)], env=env, cwd=home.home, timeout=1800),
                      "baseline_contain.sh")
            if gw.proc is not None:
                gw.proc.wait(timeout=30)
            cfg = check_contained(home, gw, "baseline")
            if _get(cfg, "gateway.auth.token") != {"source": "store", "provider": "default",
                                                   "id": "OPENCLAW_GATEWAY_TOKEN"}:
                raise RuntimeError("baseline: gateway.auth.token does not point at the stored token")
            marks = [(line.split()[0], float(line.split()[1])) for line in times.read_text().splitlines()]
            series = res.batch if batch else res.baseline
            phases = res.batch_phases if batch else res.baseline_phases
            series.add(m.elapsed_s)
            t = dict(marks)  # last mark of each name
            t0 = marks[0][1]
            sets = [v for k, v in marks if k == "set"]
            prev = t["down"]
            if not batch:
                for v in sets:
                    res.baseline_per_set.add(v - prev)
                    prev = v
            for name, (a, b) in {"gateway stop --force (returns)": ("start", "stop_returned"),
                                 "... until the gateway is gone": ("stop_returned", "down"),
                                 "config set x DM paths": ("down", "dms"),
                                 "secrets store set": ("dms", "stored"),
                                 "config set gateway.auth.token (ref)": ("stored", "done")}.items():
                phases.setdefault(name, Series(name)).add(t[b] - t[a] if a != "start" else t[b] - t0)
            log(f"round {rnd}: B baseline{' (batch)' if batch else ''} {m.elapsed_s:.2f} s")
        finally:
            gw.stop()
    return time.monotonic() - t_all


# ---- D: drain ------------------------------------------------------------------------------------

def run_drain(root: Path, rel: Release, ss: SecretService, res: ContainResults, rnd: int) -> None:
    with bench_home(root, rel, ss) as home:
        gw = started(home, res)
        try:
            assert gw.proc is not None
            t0 = time.perf_counter()
            os.kill(gw.pid, signal.SIGTERM)
            gw.proc.wait(timeout=60)
            drain = time.perf_counter() - t0
            res.drain.add(drain)
            log(f"round {rnd}: D gateway drain {drain:.3f} s (rc {gw.proc.returncode})")
        finally:
            gw.stop()


# ---- driver --------------------------------------------------------------------------------------

def measure(rounds: int = 3, budget_s: float = 420.0, batch_baseline: bool = True,
            per_path_baseline: bool = True, min_rounds: int = 2, profile: Path | None = None,
            profile_if: Callable[[ContainResults], bool] | None = None) -> ContainResults:
    """B (per-path baseline) once first, then rounds of A, C (batch baseline), D (drain) while the
    budget lasts (at least ``min_rounds``, at most ``rounds``), then B again if time is left
    before each round's A. With ``profile``, one extra A run under cProfile writes that file
    (only when ``profile_if(results)`` says so, if given)."""
    rel = release(RELEASE_ID)
    for reason in (rel.missing(), keyring_missing()):
        if reason:
            raise RuntimeError(f"cannot run the contain benchmark: {reason}")
    res = ContainResults(paths=len(dm_paths()), rounds_planned=rounds, budget_s=budget_s)
    began = time.monotonic()
    # short root: the bus and keyring control sockets must fit in sun_path (108 bytes)
    ss_root = Path(tempfile.mkdtemp(prefix="mss-"))
    ss = start_secret_service(ss_root)
    work = scratch_dir("contain-")

    def left() -> float:
        return budget_s - (time.monotonic() - began)

    try:
        # the config must be one the release accepts: validate once, before anything is timed
        with bench_home(work / "validate", rel, ss) as home:
            ok, detail = home.validate_config()
            if not ok:
                raise RuntimeError(f"the 10x5 bench config is invalid for openclaw {RELEASE_ID}: {detail[-800:]}")
        b_cost = round_cost = 0.0
        for i in range(rounds):
            if i >= min_rounds and round_cost > left():
                res.notes.append(f"stopped after {i} rounds of A/C/D: one more (~{round_cost:.0f} s) would "
                                 f"overrun the {budget_s:.0f} s budget")
                break
            if per_path_baseline and (i == 0 or b_cost + round_cost < left()):
                b_cost = run_baseline(work / f"b{i}", rel, ss, res, i, batch=False)
            elif per_path_baseline:
                res.notes.append(f"round {i}: per-path baseline not run (one takes ~{b_cost:.0f} s; "
                                 f"{max(left(), 0):.0f} s of the {budget_s:.0f} s budget left)")
            t0 = time.monotonic()
            run_moltir(work / f"a{i}", rel, ss, res, i)
            if batch_baseline:
                run_baseline(work / f"c{i}", rel, ss, res, i, batch=True)
            run_drain(work / f"d{i}", rel, ss, res, i)
            round_cost = time.monotonic() - t0
        if profile is not None and (profile_if is None or profile_if(res)):
            run_moltir(work / "profile", rel, ss, res, -1, prof=profile)
    finally:
        ss.stop()
        remove_tree(ss_root)
        remove_tree(work)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="stop running per-path baseline rounds when this is spent (one always runs)")
    ap.add_argument("--no-batch-baseline", action="store_true")
    ap.add_argument("--no-per-path-baseline", action="store_true", help="(for trying the bench out)")
    ap.add_argument("--json", type=Path, help="write the raw samples here")
    ap.add_argument("--profile", type=Path, help="one extra moltir run under cProfile, written here")
    args = ap.parse_args()
    res = measure(args.rounds, args.budget_s, not args.no_batch_baseline, not args.no_per_path_baseline,
                  profile=args.profile)
    print(f"channels {len(CHANNELS)} x accounts {len(ACCOUNTS)}: {res.paths} DM paths")
    for s in (res.moltir_critical, res.moltir_wall, res.baseline, res.batch, res.drain):
        print(f"{s.name}: median {s.median:.3f} s [{s.lo:.3f}-{s.hi:.3f}] n={s.n}")
    if args.json:
        dump_json(args.json, res.to_dict())


if __name__ == "__main__":
    main()
