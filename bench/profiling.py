"""cProfile top entries of a moltir command, for RESULTS.md where a goal is missed.

The profiled run is one extra run, never one of the timed ones (cProfile slows Python code
down, and more so code that makes many small calls).
"""

from __future__ import annotations

import pstats
from pathlib import Path


def top_entries(prof_path: Path, *, own: int = 10, moltir: int = 10) -> list[str]:
    """Two short tables: functions by own time (anything), and moltir's functions by cumulative time."""
    stats = pstats.Stats(str(prof_path))
    total = stats.total_tt  # type: ignore[attr-defined]
    rows: list[tuple[float, float, int, str]] = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, _where(filename, line, func)))
    out = [f"profiled run: {total:.2f} s of Python time", "", "by own time:", "",
           "| own s | cumulative s | calls | function |", "|---:|---:|---:|---|"]
    for tt, ct, nc, where in sorted(rows, key=lambda r: -r[0])[:own]:
        out.append(f"| {tt:.3f} | {ct:.3f} | {nc} | `{where}` |")
    out += ["", "moltir's functions by cumulative time:", "",
            "| cumulative s | own s | calls | function |", "|---:|---:|---:|---|"]
    mine = [r for r in rows if "moltir/" in r[3] and "bench/" not in r[3]]
    for tt, ct, nc, where in sorted(mine, key=lambda r: -r[1])[:moltir]:
        out.append(f"| {ct:.3f} | {tt:.3f} | {nc} | `{where}` |")
    return out


def callers_of(prof_path: Path, func_name: str, limit: int = 5) -> list[str]:
    """Who called ``func_name`` (e.g. ``<built-in method time.sleep>``) and for how long."""
    stats = pstats.Stats(str(prof_path))
    out: list[str] = []
    for (_filename, _line, func), (_cc, _nc, _tt, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func_name not in func:
            continue
        ranked = sorted(callers.items(), key=lambda kv: -kv[1][3])[:limit]
        for (cf, cl, cfn), (_a, ncalls, _tt, ct) in ranked:
            out.append(f"`{_where(cf, cl, cfn)}` -> `{func}`: {ncalls} calls, {ct:.3f} s")
    return out


def _where(filename: str, line: int, func: str) -> str:
    if filename == "~":
        return func
    for marker in ("/src/", "/site-packages/", "/lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({func})"


def cumulative(prof_path: Path, file_part: str, func: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of the function ``func`` defined in a file whose path contains
    ``file_part`` (0, 0.0 when the profile has none)."""
    stats = pstats.Stats(str(prof_path))
    calls, cum = 0, 0.0
    for (filename, _line, name), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if name == func and file_part in filename:
            calls += nc
            cum += ct
    return calls, cum
