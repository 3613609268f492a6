"""scripts/bounded.py: the watchdog every npm/openclaw run of ensure-deps.sh goes through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bounded.py"


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _alive_with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def test_exit_status_and_stdout_file_pass_through(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    res = _run("--timeout", "30", "--what", "t", "--stdout", str(out), "--",
               "sh", "-c", "echo 2026.1.29; exit 3")
    assert res.returncode == 3
    assert out.read_text() == "2026.1.29\n"
    assert res.stdout == ""


def test_a_hung_command_and_its_children_are_ended_and_named(tmp_path: Path) -> None:
    marker = f"bounded-hang-{tmp_path.name}"
    res = _run("--timeout", "1", "--heartbeat", "0.3", "--what", "hang", "--",
               "bash", "-c", f"sleep 300 & exec -a {marker} sleep 300")
    assert res.returncode == 124
    assert "[hang] still running after" in res.stderr
    assert "[hang] did not finish in 1s; 2 process(es):" in res.stderr
    assert "wchan" in res.stderr and marker in res.stderr
    assert _alive_with_marker(marker) == []


def test_a_command_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    marker = f"bounded-ignore-{tmp_path.name}"
    res = _run("--timeout", "0.5", "--kill-grace", "0.5", "--what", "stubborn", "--",
               "bash", "-c", f"trap '' TERM; exec -a {marker} sleep 300")
    assert res.returncode == 124
    assert "still alive after SIGKILL" not in res.stderr
    assert _alive_with_marker(marker) == []


def test_processes_left_behind_cannot_hold_a_pipe(tmp_path: Path) -> None:
    marker = f"bounded-orphan-{tmp_path.name}"
    # The orphan inherits the caller's stdout; if it lived on, capture_output would wait for it.
    res = _run("--timeout", "30", "--what", "orphan", "--",
               "bash", "-c", f"(exec -a {marker} sleep 300 &); exit 0", timeout=20)
    assert res.returncode == 0
    assert "exited 0 but left processes behind; ending them" in res.stderr
    assert _alive_with_marker(marker) == []


def test_a_missing_command_is_exit_127() -> None:
    res = _run("--timeout", "5", "--what", "gone", "--", "/nonexistent/openclaw")
    assert res.returncode == 127
    assert "cannot start /nonexistent/openclaw" in res.stderr
