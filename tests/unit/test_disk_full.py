"""A full disk before any step ran: exit 3 (environment not ready, nothing changed), one line, and
no half-made case left behind.

The full disk is simulated in a child ``moltir`` process (ENOSPC from the write the test names), so
the real CLI, lock, engine and case code run; the integration suite covers a real full tmpfs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.harness.envelope import moltir_json

# Run the CLI with one kind of write failing with ENOSPC ("case" = every atomic write, so case.json;
# "index" = the install's case index only; "journal" = the case journal; "lock" = the run lock's
# holder record).
_CHILD = r"""
import errno, os, sys
import moltir.engine.case, moltir.fsutil
from moltir.errors import MoltirError
what = os.environ["FAIL_WRITE"]
full = OSError(errno.ENOSPC, "No space left on device")
if what == "case":
    def _write_all(fd, data):
        raise full
    moltir.fsutil._write_all = _write_all
elif what == "index":
    real = moltir.engine.case.write_json
    def write_json(path, obj, **kw):
        if "installs" in str(path):
            raise moltir.fsutil.os_error(full, f"writing {path}")
        return real(path, obj, **kw)
    moltir.engine.case.write_json = write_json
elif what == "journal":  # only writes to a case journal fail
    real_open, real_write, journal_fds = os.open, os.write, set()
    def open_(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        (journal_fds.add if str(path).endswith("journal.jsonl") else journal_fds.discard)(fd)
        return fd
    def write(fd, data):
        if fd in journal_fds:
            raise full
        return real_write(fd, data)
    os.open, os.write = open_, write
elif what == "lock":
    def pwrite(fd, data, offset):
        raise full
    os.pwrite = pwrite
from moltir.cli import main
sys.argv = ["moltir", *sys.argv[1:]]
main()
"""


def _env(tmp_path: Path, fail: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MOLTIR_ENABLE_TEST_ACTIONS="1", NO_COLOR="1", FAIL_WRITE=fail)
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True, exist_ok=True)
    env["OPENCLAW_STATE_DIR"] = str(state)
    return env


def _runbook(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "marks"
    rb = tmp_path / "rb.json5"
    rb.write_text(f'{{ name: "contain", steps: [ {{ id: "first", action: "test.sleep", '
                  f'with: {{ marker: "{marker}" }} }} ] }}')
    return rb, marker


def _moltir(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CHILD, *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def _one_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("moltir: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "internal error" not in result.stderr
    return lines[0]


def test_disk_full_writing_case_json_is_exit_3_and_leaves_no_case_folder(tmp_path: Path) -> None:
    env = _env(tmp_path, "case")
    rb, marker = _runbook(tmp_path)
    case_dir = tmp_path / "new" / "deeper" / "case"
    result = _moltir(env, "contain", "--yes", "--runbook", str(rb), "--case-dir", str(case_dir))
    assert result.returncode == 3, result.stdout + result.stderr
    line = _one_error(result)
    assert "disk full while writing" in line and "case.json" in line and "nothing was changed" in line
    assert not (tmp_path / "new").exists(), "the folders this run created were left behind"
    assert not marker.exists()
    # the default case folder under the moltir home: nothing left under cases/ either
    result = _moltir(env, "contain", "--yes", "--json", "--runbook", str(rb))
    assert result.returncode == 3 and moltir_json(result.stdout)["exit_code"] == 3
    cases = Path(env["MOLTIR_HOME"]) / "cases"
    assert not cases.exists() or not any(cases.iterdir())


def test_an_empty_case_dir_the_user_made_stays_but_holds_nothing(tmp_path: Path) -> None:
    env = _env(tmp_path, "case")
    rb, _ = _runbook(tmp_path)
    case_dir = tmp_path / "mine"
    case_dir.mkdir()
    result = _moltir(env, "contain", "--yes", "--runbook", str(rb), "--case-dir", str(case_dir))
    assert result.returncode == 3, result.stderr
    assert case_dir.is_dir() and not any(case_dir.iterdir())


def _contain_on_full_disk(tmp_path: Path, fail: str) -> tuple[dict[str, str], Path, Path, Path, str]:
    """``moltir contain --case-dir CASE`` with the ``fail`` write full: exit 3 and one line.
    Returns the environment, runbook, the step's marker, the case folder and that line."""
    env = _env(tmp_path, fail)
    rb, marker = _runbook(tmp_path)
    case_dir = tmp_path / "case"
    result = _moltir(env, "contain", "--yes", "--runbook", str(rb), "--case-dir", str(case_dir))
    assert result.returncode == 3, result.stdout + result.stderr
    return env, rb, marker, case_dir, _one_error(result)


def test_disk_full_writing_the_case_index_removes_the_new_case(tmp_path: Path) -> None:
    _, _, marker, case_dir, line = _contain_on_full_disk(tmp_path, "index")
    assert "disk full" in line and "nothing was changed" in line
    assert not case_dir.exists() and not marker.exists()


def test_disk_full_writing_the_run_lock_is_exit_3_not_a_crash(tmp_path: Path) -> None:
    env = _env(tmp_path, "lock")
    rb, marker = _runbook(tmp_path)
    result = _moltir(env, "contain", "--yes", "--runbook", str(rb))
    assert result.returncode == 3, result.stdout + result.stderr
    line = _one_error(result)
    assert "disk full while writing the run lock" in line and "nothing was changed" in line
    assert not marker.exists()
    assert not (Path(env["MOLTIR_HOME"]) / "crash").exists()


def test_disk_full_writing_the_first_journal_line_is_exit_3_and_the_next_run_continues(tmp_path: Path) -> None:
    env, rb, marker, case_dir, line = _contain_on_full_disk(tmp_path, "journal")
    assert "disk full while writing the journal" in line and "nothing was changed" in line
    assert "run the command again: it continues in case" in line
    assert not marker.exists()
    env["FAIL_WRITE"] = "none"  # space freed: the same command continues in that case
    result = _moltir(env, "contain", "--yes", "--runbook", str(rb))
    assert result.returncode == 0, result.stdout + result.stderr
    assert marker.exists()
    events = [json.loads(ln)["event"] for ln in (case_dir / "journal.jsonl").read_text().splitlines()]
    assert events[0] == "run.start" and events[-1] == "run.done"
