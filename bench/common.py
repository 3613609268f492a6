"""Shared bench helpers: sample series (median, min-max), timed child processes with their own
peak RSS, the machine description, and where scratch data goes.

Every measurement is a :class:`Series` of raw samples; nothing is averaged away before the
report. A child's peak RSS comes from ``os.wait4`` on that very child (the kernel folds in the
descendants it waited for), so one big earlier child cannot leak into a later reading the way
``getrusage(RUSAGE_CHILDREN)`` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
MOLTIR = str(VENV_BIN / "moltir")


def scratch_root() -> Path:
    """``$MOLTIR_BENCH_DIR`` or ``<repo>/.cache/bench`` (never inside the tracked tree)."""
    root = Path(os.environ.get("MOLTIR_BENCH_DIR") or REPO / ".cache" / "bench")
    root.mkdir(parents=True, exist_ok=True)
    return root


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_root()))


def remove_tree(path: Path) -> None:
    """rm -rf that also handles the read-only (0400/0500) evidence copies of a sealed case."""
    if not path.exists():
        return
    for d, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Series:
    """Raw samples of one measurement (seconds unless ``unit`` says otherwise)."""

    name: str
    unit: str = "s"
    samples: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def lo(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def hi(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "samples": self.samples, "median": self.median,
                "min": self.lo, "max": self.hi}


@dataclass
class Measured:
    elapsed_s: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str


LAUNCHER = Path(__file__).resolve().parent / "launch.py"


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 stdin_text: str | None = None, timeout: float = 900.0) -> Measured:
    """Run ``argv`` through bench/launch.py: its wall time (fork to reaping) and its own peak RSS.

    The launcher runs in its own session; after ``timeout`` its whole process group is killed.
    stdout/stderr go to temp files (no pipe-draining thread competes for the CPU)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", prefix="bench-launch-", suffix=".txt") as result:
        stdin: Any = subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER), result.name, *argv],
                                env=dict(env) if env is not None else None, cwd=cwd, stdin=stdin,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            proc.communicate(stdin_text.encode() if stdin_text is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise RuntimeError(f"{' '.join(argv[:3])} ... did not finish within {timeout:.0f} s") from None
        raw = result.read().split()
        if len(raw) != 2:
            raise RuntimeError(f"bench/launch.py gave no result for {argv[0]} (rc {proc.returncode})")
        out.seek(0)
        err.seek(0)
        return Measured(float(raw[0]), int(raw[1]), proc.returncode, out.read().decode(errors="replace"),
                        err.read().decode(errors="replace"))


def check(m: Measured, what: str) -> Measured:
    if m.returncode != 0:
        tail = (m.stdout + m.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{what} exited with rc {m.returncode}:\n" + "\n".join(tail))
    return m


def drop_caches_note() -> str:
    return ("page cache not dropped (needs root and would measure the disk, not the tools): "
            "both sides read warm data")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version(),
                            "kernel": platform.release(), "platform": platform.platform()}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        for line in meminfo.splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with contextlib.suppress(OSError):
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def sync() -> None:
    subprocess.run(["sync"], check=True)


def alternate(rounds: int, *runs: Callable[[int], None]) -> None:
    """Run ``runs`` in turn, round after round: A B A B ... (drift hits both sides alike)."""
    for i in range(rounds):
        for run in runs:
            run(i)


def dump_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
