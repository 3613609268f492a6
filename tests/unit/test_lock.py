"""The per-install run lock: exclusive across processes, re-entrant within one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from moltir.errors import MoltirError
from moltir.lock import run_lock

HOLD = """
import sys, time
from pathlib import Path
from moltir.lock import run_lock
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
