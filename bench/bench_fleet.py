"""Benchmark: containing 1 host vs 3 hosts through Ansible (the moltir.openclaw collection's contain.yml).

    sudo .venv/bin/python -m bench.bench_fleet [--rounds 1] [--json FILE]

Needs root and what the fleet test needs (tests/harness/fleet.py: network namespaces, users, Debian's sshd,
dbus + gnome-keyring, openclaw 2026.9.6 under .cache/, ansible-core in the venv). One fleet of 3 hosts is built
once (each a network namespace with its own sshd, user, keyring and real gateway); the collection is built and
installed with ansible-galaxy. Then, per round, alternating:

* **A: 1 host** -- ``ansible-playbook moltir.openclaw.contain --limit h1``;
* **B: 3 hosts** -- ``ansible-playbook moltir.openclaw.contain`` (h1-h3 at once, forks 10).

Each is the playbook's wall time (ansible-playbook start to exit: SSH, module transfer, moltir, the result
saved on the controller). Every host's own moltir run is read from its case journal (``run.start`` ->
``run.done``), so Ansible's overhead is the wall time minus the slowest host's run. Between the timed runs
``restore.yml`` brings the gateways back on their new tokens (not timed); the next contain opens a new case.
Every run is checked: rc 0, each host changed, its gateway down.

The issue's claim: containing N hosts costs the slowest host plus Ansible's overhead, not the sum, so the
ratio B/A should stay well below 3. The hosts share this machine's cores: on a 2-core machine three
containments (each a few CPU-heavy ``openclaw`` runs: config validation, the deep audit) compete for the CPU,
which a real fleet of separate machines does not; the report gives the cores and load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import fleet as harness
from tests.harness.fleet import Fleet

from bench.common import Series, dump_json, log, machine

HOSTS = 3


@dataclass
class FleetResults:
    one: Series = field(default_factory=lambda: Series("contain.yml, 1 host (wall)"))
    three: Series = field(default_factory=lambda: Series("contain.yml, 3 hosts (wall)"))
    one_host_run: Series = field(default_factory=lambda: Series("1 host: moltir run (journal)"))
    three_slowest: Series = field(default_factory=lambda: Series("3 hosts: slowest moltir run (journal)"))
    three_sum: Series = field(default_factory=lambda: Series("3 hosts: sum of the moltir runs (journal)"))
    overhead_one: Series = field(default_factory=lambda: Series("Ansible overhead, 1 host (wall - run)"))
    overhead_three: Series = field(default_factory=lambda: Series("Ansible overhead, 3 hosts (wall - slowest)"))
    setup_s: float = 0.0
    machine: dict[str, Any] = field(default_factory=machine)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.three.median / self.one.median

    def to_dict(self) -> dict[str, Any]:
        series = [self.one, self.three, self.one_host_run, self.three_slowest, self.three_sum, self.overhead_one,
                  self.overhead_three]
        return {"series": [s.to_dict() for s in series], "ratio_3_to_1": self.ratio, "setup_s": self.setup_s,
                "machine": {**self.machine, "loadavg_end": [round(x, 2) for x in os.getloadavg()]},
                "notes": self.notes}


def _secs(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _run_seconds(case: Path) -> float:
    records = [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines() if line.strip()]
    start = [r["ts"] for r in records if r.get("event") == "run.start" and r.get("runbook") == "contain"][-1]
    end = [r["ts"] for r in records if r.get("event") == "run.done" and r.get("runbook") == "contain"][-1]
    return _secs(end) - _secs(start)


def _contain(fl: Fleet, limit: list[str], tag: str) -> tuple[float, list[float]]:
    """contain.yml on ``limit``: (wall seconds, each host's moltir run seconds), every outcome checked."""
    results = fl.results / tag
    results.mkdir()
    t0 = time.monotonic()
    proc = fl.playbook("contain", "--limit", ",".join(limit), "-e", f"moltir_results_dir={results}",
                       "-e", "moltir_reason=bench")
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"contain.yml on {limit} exited {proc.returncode}:\n"
                           f"{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    runs = []
    for h in (h for h in fl.hosts if h.name in limit):
        res = json.loads((results / f"{h.name}.contain.json").read_text())
        if not res.get("changed") or res.get("rc") != 0 or h.port_open():
            raise RuntimeError(f"{h.name} was not contained: {res.get('msg')}")
        runs.append(_run_seconds(h.cases()[-1]))
    return wall, runs


def _restore(fl: Fleet, limit: list[str], tag: str) -> None:
    proc = fl.playbook("restore", "--limit", ",".join(limit), "-e", f"moltir_runbook={fl.slow_start_restore_runbook()}")
    if proc.returncode != 0:
        raise RuntimeError(f"restore.yml ({tag}) exited {proc.returncode}:\n{proc.stdout[-3000:]}")
    for h in (h for h in fl.hosts if h.name in limit):
        if not h.port_open():
            raise RuntimeError(f"{h.name}: gateway not back after restore.yml")


def measure(rounds: int) -> FleetResults:
    reason = harness.missing()
    if reason:
        raise SystemExit(f"bench_fleet: {reason}")
    res = FleetResults()
    t0 = time.monotonic()
    fl = Fleet(hosts=HOSTS).setup()
    try:
        fl.install_collection()
        fl.start_gateways()
        res.setup_s = time.monotonic() - t0
        log(f"fleet of {HOSTS} hosts ready in {res.setup_s:.0f} s (gateways up)")
        names = [h.name for h in fl.hosts]
        for rnd in range(rounds):
            wall, runs = _contain(fl, names[:1], f"r{rnd}-one")
            res.one.add(wall)
            res.one_host_run.add(runs[0])
            res.overhead_one.add(wall - runs[0])
            log(f"round {rnd + 1}: 1 host {wall:.1f} s (moltir {runs[0]:.1f} s)")
            _restore(fl, names[:1], f"r{rnd}-one")
            wall, runs = _contain(fl, names, f"r{rnd}-three")
            res.three.add(wall)
            res.three_slowest.add(max(runs))
            res.three_sum.add(sum(runs))
            res.overhead_three.add(wall - max(runs))
            log(f"round {rnd + 1}: 3 hosts {wall:.1f} s (moltir runs {', '.join(f'{r:.1f}' for r in runs)} s)")
            _restore(fl, names, f"r{rnd}-three")
    finally:
        notes = fl.teardown()
        if notes:
            res.notes += notes
    return res


def markdown(res: FleetResults) -> str:
    m = res.machine
    rows = [("Time to contain through Ansible: 3 hosts vs 1 host (contain.yml wall)",
             f"{res.three.median:.1f} s [{res.three.lo:.1f}-{res.three.hi:.1f}] n={res.three.n}",
             f"{res.one.median:.1f} s [{res.one.lo:.1f}-{res.one.hi:.1f}] n={res.one.n}", f"{res.ratio:.2f}x")]
    lines = ["| Measurement | 3 hosts | 1 host | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += ["", "| detail | median [min-max] |", "|---|---|"]
    for s in (res.one_host_run, res.three_slowest, res.three_sum, res.overhead_one, res.overhead_three):
        lines.append(f"| {s.name} | {s.median:.1f} s [{s.lo:.1f}-{s.hi:.1f}] n={s.n} |")
    lines += ["", f"Machine: {m.get('cores')} cores ({m.get('cpu', '?')}), load average "
              f"{m.get('loadavg_start')} at the start, {[round(x, 2) for x in os.getloadavg()]} at the end; "
              f"fleet set-up {res.setup_s:.0f} s (not timed)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = measure(args.rounds)
    print(markdown(res))
    if args.json:
        dump_json(args.json, res.to_dict())


if __name__ == "__main__":
    main()
