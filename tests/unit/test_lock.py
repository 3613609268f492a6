"""The per-install run lock: exclusive across processes, re-entrant within one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from moltir.engine.lock import run_lock
from moltir.errors import MoltirError

HOLD = """
import sys, time
from pathlib import Path
from moltir.engine.lock import run_lock
with run_lock(Path(sys.argv[1]), "k", "the install", "moltir contain --yes"):
    Path(sys.argv[2]).touch()
    time.sleep(60)
"""


def test_nested_in_one_process_and_exclusive_across_processes(tmp_path: Path) -> None:
    with run_lock(tmp_path, "k", "the install", "outer"), run_lock(tmp_path, "k", "the install", "inner"):
        pass  # the CLI holds it around the engine, which takes it again
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), str(ready)])
    try:
        from tests.harness.net import wait_until

        wait_until(ready.exists, timeout=30, what="the holder to take the lock")
        with pytest.raises(MoltirError) as err, run_lock(tmp_path, "k", "the install", "second"):
            pass
        assert err.value.exit_code == 4 and f"pid {holder.pid}" in err.value.message
        assert "moltir contain --yes" in err.value.message
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path, "k", "the install", "after"):  # freed by the holder's death
        pass


HOLD_ANCHORED = """
import sys, time
from pathlib import Path
from moltir.engine.lock import run_lock
with run_lock(Path(sys.argv[1]), "k", "the install", "moltir contain --yes", anchor=Path(sys.argv[3])):
    Path(sys.argv[2]).touch()
    time.sleep(60)
"""


def test_two_moltir_homes_on_one_state_dir_exclude_each_other(tmp_path: Path) -> None:
    """Different MOLTIR_HOMEs mean different lock files; the flock on the state dir still excludes."""
    state = tmp_path / "state"
    state.mkdir()
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_ANCHORED, str(tmp_path / "home-a"), str(ready),
                               str(state)])
    try:
        from tests.harness.net import wait_until

        wait_until(ready.exists, timeout=30, what="the holder to take the lock")
        with pytest.raises(MoltirError) as err, run_lock(tmp_path / "home-b", "k", "the install", "second",
                                                         anchor=state):
            pass
        assert err.value.exit_code == 4 and "another moltir home" in err.value.message
        # the second run's own lock file was released: a third run from home-b is refused the same way
        with pytest.raises(MoltirError), run_lock(tmp_path / "home-b", "k", "the install", "third", anchor=state):
            pass
        assert sorted(p.name for p in state.iterdir()) == []   # nothing written into the state dir
    finally:
        holder.kill()
        holder.wait()
    with run_lock(tmp_path / "home-b", "k", "the install", "after", anchor=state):
        pass
