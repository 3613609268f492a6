"""Benchmark: the JSON5 editor on a 1 MiB config with 500 channels, against ``json5.loads`` alone.

    .venv/bin/python -m bench.bench_json5 [--rounds 5] [--channels 500] [--size-kib 1024] [--json FILE]

The config is commented JSON5 (unquoted keys, trailing commas, comments on most lines): 500
channel blocks, each with a DM policy, a group policy, an allow-list, groups and two accounts
with their own DM policy -- 1500 ``dmPolicy`` paths. One moltir round is what ``dm_policy.set``
does to it, phase by phase, in-process (``moltir.openclaw.configfile`` / ``moltir.openclaw.json5edit``):

* parse   -- ``ConfigFile.load_path``: the span-aware scanner + the reference ``json5.loads``;
* plan    -- ``dm_policy.scan`` (every DM path) and the edits still needed;
* splice  -- ``ConfigFile.plan_edits``: byte-range splices, re-parse, check that the result is
  exactly the intended change (meta and gateway.mode untouched);
* write   -- ``ConfigFile.write``: pre-image check, atomic write (temp + fsync + rename);
* verify  -- load the written file again and scan: no path may still need a change.

The baseline is ``json5.loads`` of the same text. The reference-parse cache of json5edit is
cleared before every moltir round and the original file put back, so no round reuses another's
work. Rounds alternate A (moltir) and B (json5.loads).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from bench.common import Series, dump_json, log, remove_tree, scratch_dir
from moltir.actions import dm_policy
from moltir.openclaw import capabilities, json5edit
from moltir.openclaw.configfile import ConfigFile

# The channel table of the release the other benchmarks run (2026.9.6), from the capability table.
CAPS = capabilities.for_install("openclaw", "2026.9.6", "bench", package_root=None, state_dir=None)

POLICIES = ("pairing", "open", "allowlist")


@dataclass
class Json5Results:
    total: Series = field(default_factory=lambda: Series("moltir: parse + plan + splice + write + verify"))
    phases: dict[str, Series] = field(default_factory=dict)
    json5_loads: Series = field(default_factory=lambda: Series("json5.loads"))
    json_loads: Series = field(default_factory=lambda: Series("json.loads of the same data as JSON (context)"))
    size: int = 0
    channels: int = 0
    paths: int = 0
    edits: int = 0
    lines: int = 0
    profile: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, Series):
                out[k] = v.to_dict()
            elif isinstance(v, dict):
                out[k] = {name: s.to_dict() for name, s in v.items()}
            else:
                out[k] = v
        return out


def _ids(n: int, base: int) -> str:
    return ", ".join(json.dumps(str(base + i * 7919)) for i in range(n))


def _channel(i: int, allow: int) -> str:
    cid = f"chan-{i:03d}"
    dm = POLICIES[i % 3]
    allow_from = '["*"]' if dm == "open" else f"[{_ids(allow, 100000000 + i)}]"
    acc_dm = POLICIES[(i + 1) % 3]
    acc_allow = '["*"]' if acc_dm == "open" else f"[{_ids(3, 200000000 + i)}]"
    return f"""\
    // {cid}: bot for team {i % 17} -- rotated 2026-0{1 + i % 9}-1{i % 10}, owner ops-{i % 5}
    "{cid}": {{
      enabled: {"true" if i % 11 else "false"},
      botToken: "{i:09d}:AAFakeToken{i:05d}FakeTokenFakeTokenFake",  // placeholder, not a secret
      dmPolicy: "{dm}",  // who may DM the bot
      allowFrom: {allow_from},
      groupPolicy: "allowlist",
      groups: {{
        "-100{i:07d}": {{ requireMention: true }},
        "-200{i:07d}": {{ requireMention: false, allowFrom: [{_ids(2, 300000000 + i)}] }},
      }},
      accounts: {{
        primary: {{
          botToken: "{i + 1:09d}:AAFakePrimary{i:05d}FakeFakeFakeFake",
          dmPolicy: "{acc_dm}",
          allowFrom: {acc_allow},
        }},
        backup: {{ botToken: "{i + 2:09d}:AAFakeBackup{i:05d}FakeFake", dmPolicy: "pairing" }},  // standby
      }},
    }},
"""


def config_text(channels: int = 500, size: int = 1 << 20) -> str:
    head = """\
// A large OpenClaw config (bench/bench_json5.py): comments, unquoted keys, trailing commas.
{
  meta: { lastTouchedVersion: "2026.9.6" },
  gateway: {
    mode: "local",
    bind: "loopback",
    port: 18789,
    auth: { mode: "token", token: "bench-token-not-a-secret" },
  },
  channels: {
"""
    tail = "  },\n}\n"
    allow = 4
    while True:  # grow the allow-lists until the file reaches the size
        text = head + "".join(_channel(i, allow) for i in range(channels)) + tail
        if len(text.encode()) >= size or allow > 200:
            return text
        allow += max(1, int((size - len(text.encode())) / channels / 12))


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def moltir_round(path: Path, original: bytes) -> dict[str, float]:
    path.write_bytes(original)
    json5edit.reference_parse.cache_clear()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg = ConfigFile.load_path(path, env={})
    t1 = time.perf_counter()
    table = dm_policy.table_for(CAPS)
    scan = dm_policy.scan(cfg, table, "disabled", "report", None)
    edits: dict[tuple[str, ...], object] = {tg.path: tg.value for tg in scan.targets
                                            if _get(cfg.data, tg.path) != tg.value}
    t2 = time.perf_counter()
    planned = cfg.plan_edits(edits)
    t3 = time.perf_counter()
    cfg.write(planned)
    t4 = time.perf_counter()
    again = ConfigFile.load_path(path, env={})
    left = [tg.path for tg in dm_policy.scan(again, dm_policy.table_for(CAPS),
                                             "disabled", "report", None).targets
            if _get(again.data, tg.path) != tg.value]
    t5 = time.perf_counter()
    if left or not edits:
        raise RuntimeError(f"json5 bench: {len(edits)} edits planned, {len(left)} paths still not disabled")
    t.update(parse=t1 - t0, plan=t2 - t1, splice=t3 - t2, write=t4 - t3, verify=t5 - t4, total=t5 - t0,
             edits=float(len(edits)), paths=float(len(scan.targets)))
    return t


def measure(rounds: int = 5, channels: int = 500, size_kib: int = 1024, *, budget_s: float = math.inf,
            min_rounds: int = 2, with_profile: bool = False) -> Json5Results:
    """Up to ``rounds`` A/B rounds; after ``min_rounds``, no new round starts once ``budget_s`` is spent."""
    res = Json5Results(channels=channels)
    base = scratch_dir("json5-")
    began = time.monotonic()
    try:
        text = config_text(channels, size_kib << 10)
        original = text.encode()
        res.size, res.lines = len(original), text.count("\n")
        path = base / "openclaw.json"
        path.write_bytes(original)
        path.chmod(0o600)
        as_json = json.dumps(json5.loads(text))
        for rnd in range(rounds):
            spent = time.monotonic() - began
            if rnd >= min_rounds and spent / rnd * (rnd + 1) > budget_s:
                res.notes.append(f"{rnd} rounds: another would overrun this benchmark's {budget_s:.0f} s budget")
                break
            t = moltir_round(path, original)
            res.total.add(t["total"])
            for phase in ("parse", "plan", "splice", "write", "verify"):
                res.phases.setdefault(phase, Series(f"moltir {phase}")).add(t[phase])
            res.edits, res.paths = int(t["edits"]), int(t["paths"])
            t0 = time.perf_counter()
            json5.loads(text)
            res.json5_loads.add(time.perf_counter() - t0)
            t0 = time.perf_counter()
            json.loads(as_json)
            res.json_loads.add(time.perf_counter() - t0)
            log(f"json5 round {rnd}: moltir {t['total']:.3f} s (parse {t['parse']:.3f}, plan {t['plan']:.3f}, "
                f"splice {t['splice']:.3f}, write {t['write']:.3f}, verify {t['verify']:.3f}); "
                f"json5.loads {res.json5_loads.samples[-1]:.3f} s")
        if with_profile:
            res.profile = profile(path, original)
    finally:
        remove_tree(base)
    return res


def profile(path: Path, original: bytes, top: int = 12) -> list[str]:
    """cProfile of one more moltir round (not counted): the top functions by own time."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    moltir_round(path, original)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return [line for line in out.getvalue().splitlines() if line.strip()][-(top + 1):]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--channels", type=int, default=500)
    ap.add_argument("--size-kib", type=int, default=1024)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile", action="store_true", help="one more round under cProfile (not counted)")
    args = ap.parse_args()
    res = measure(args.rounds, args.channels, args.size_kib, with_profile=args.profile)
    print(f"{res.size / 1024:.0f} KiB, {res.lines} lines, {res.channels} channels, {res.paths} DM paths, "
          f"{res.edits} edits")
    for s in (res.total, *res.phases.values(), res.json5_loads, res.json_loads):
        print(f"{s.name}: median {s.median:.3f} s [{s.lo:.3f}-{s.hi:.3f}] n={s.n}")
    print("\n".join(res.profile))
    if args.json:
        dump_json(args.json, res.to_dict())


if __name__ == "__main__":
    main()
