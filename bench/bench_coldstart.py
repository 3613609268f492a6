"""Benchmark: cold start -- ``moltir --help`` and ``moltir status`` against ``python -c pass`` and
``openclaw --help``.

    .venv/bin/python -m bench.bench_coldstart [--rounds 7] [--json FILE]

Each command is a fresh process (the ``.venv/bin/moltir`` console script a user runs, the same
venv's ``python``, openclaw 2026.9.6's own bin), run in turn round after round. ``moltir status``
runs against an isolated install (openclaw 2026.9.6 on PATH, so discovery reads its
package.json) that holds one sealed case, as it would during an incident. One untimed warm-up
round first: the OS file cache then holds every side's files, as it does when an operator types
the command a second time. ``python -X importtime`` of ``moltir --help`` gives the import
profile reported next to the result.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.releases import release

from bench.common import MOLTIR, PYTHON, REPO, Series, check, dump_json, log, remove_tree, run_measured, scratch_dir

RELEASE_ID = "2026.9.6"


@dataclass
class ColdStartResults:
    help: Series = field(default_factory=lambda: Series("moltir --help"))
    status: Series = field(default_factory=lambda: Series("moltir status"))
    python: Series = field(default_factory=lambda: Series("python -c pass"))
    openclaw: Series = field(default_factory=lambda: Series("openclaw --help"))
    help_rss: Series = field(default_factory=lambda: Series("moltir --help peak RSS", "MiB"))
    imports: list[tuple[str, int]] = field(default_factory=list)  # (module, cumulative us), top entries
    import_total_us: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.to_dict() if isinstance(v, Series) else v) for k, v in self.__dict__.items()}


def _install(base: Path) -> dict[str, str]:
    rel = release(RELEASE_ID)
    state = base / "home" / ".openclaw"
    (state / "logs").mkdir(parents=True, exist_ok=True)
    (base / "tmp").mkdir(exist_ok=True)
    state.chmod(0o700)
    (state / "openclaw.json").write_text('{ gateway: { mode: "local", port: 18789 } }\n')
    (state / "logs" / "gateway.log").write_text('{"1": "listening"}\n')
    return {"HOME": str(base / "home"), "TMPDIR": str(base / "tmp"), "LANG": "C.UTF-8",
            "PATH": rel.path_env("/usr/bin:/bin"), "MOLTIR_HOME": str(base / "moltir-home"),
            "XDG_STATE_HOME": str(base / "xdg" / "state"), "XDG_CONFIG_HOME": str(base / "xdg" / "config"),
            "XDG_CACHE_HOME": str(base / "xdg" / "cache")}


def import_profile(env: dict[str, str]) -> tuple[int, list[tuple[str, int]]]:
    """``-X importtime`` of ``moltir --help``: total and the top-level modules by cumulative time."""
    m = check(run_measured([PYTHON, "-X", "importtime", "-m", "moltir", "--help"], env=env), "importtime")
    rows: list[tuple[str, int, int]] = []
    for line in m.stderr.splitlines():
        hit = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if hit:
            rows.append((hit.group(4), int(hit.group(2)), (len(hit.group(3)) - 1) // 2))
    total = sum(cum for _, cum, depth in rows if depth == 0)
    # top-level modules and the modules they import directly, by cumulative time
    top = [(("  " * depth) + name, cum) for name, cum, depth in rows if depth <= 1]
    return total, sorted(top, key=lambda r: -r[1])[:12]


def measure(rounds: int = 7) -> ColdStartResults:
    rel = release(RELEASE_ID)
    if rel.missing():
        raise RuntimeError(f"cannot run the cold-start benchmark: {rel.missing()}")
    res = ColdStartResults()
    base = scratch_dir("coldstart-")
    try:
        env = _install(base)
        # one sealed case for `moltir status` to report on
        check(run_measured([MOLTIR, "contain", "--yes", "--runbook", str(REPO / "bench" / "snapshot.json5"),
                            "--reason", "bench"], env=env, cwd=base), "moltir contain (setup)")
        oc_env = {**env, "OPENCLAW_STATE_DIR": str(base / "home" / ".openclaw"), "NO_COLOR": "1"}
        cmds: list[tuple[Series, list[str], dict[str, str]]] = [
            (res.help, [MOLTIR, "--help"], env),
            (res.python, [PYTHON, "-c", "pass"], env),
            (res.status, [MOLTIR, "status"], env),
            (res.openclaw, [str(rel.openclaw_bin), "--help"], oc_env),
        ]
        for rnd in range(rounds + 1):
            for series, argv, e in cmds:
                m = check(run_measured(argv, env=e, cwd=base), " ".join([Path(argv[0]).name, *argv[1:]]))
                if argv[-1] == "--help" and "Usage" not in m.stdout:
                    raise RuntimeError(f"{argv[0]} --help printed no usage: {m.stdout[:200]!r} {m.stderr[:200]!r}")
                if rnd == 0:
                    continue  # warm-up
                series.add(m.elapsed_s)
                if series is res.help:
                    res.help_rss.add(m.maxrss_kib / 1024)
            if rnd:
                log(f"cold start round {rnd}: " + ", ".join(f"{s.name} {s.samples[-1] * 1000:.0f} ms"
                                                            for s, _, _ in cmds))
        status_out = run_measured([MOLTIR, "status"], env=env, cwd=base).stdout
        if "contained" not in status_out and "done" not in status_out:
            res.notes.append(f"`moltir status` output did not show the case: {status_out.strip()[:200]}")
        res.import_total_us, res.imports = import_profile(env)
    finally:
        remove_tree(base)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = measure(args.rounds)
    for s in (res.help, res.status, res.python, res.openclaw):
        print(f"{s.name}: median {s.median * 1000:.0f} ms [{s.lo * 1000:.0f}-{s.hi * 1000:.0f}] n={s.n}")
    print(f"imports of moltir --help: {res.import_total_us / 1000:.0f} ms; top: {res.imports[:5]}")
    if args.json:
        dump_json(args.json, res.to_dict())


if __name__ == "__main__":
    main()
