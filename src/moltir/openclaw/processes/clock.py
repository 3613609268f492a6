"""The process create-time clock: did a process start before or after a moment."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import psutil


def create_clock() -> float:
    """Now, on the clock of ``psutil.Process.create_time()``, to tell whether a process started
    before or after a moment.

    On Linux a create time is the kernel's boot time (``btime`` in /proc/stat, whole seconds) plus
    the process's start tick, so it lags ``time.time()`` by up to a second, by a different amount
    on each machine: a process started just after ``time.time()`` can look older than it. Boot
    time plus CLOCK_BOOTTIME is the same clock, to the tick.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError, psutil.Error):
            return psutil.boot_time() + time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time()


def _clock_tick() -> float:
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return 0.01


#: create times are whole clock ticks since boot (10 ms): a process started a few ms after a moment
#: can carry a create time just before it
CREATE_TIME_SLACK_S = 2 * _clock_tick()


def started_since(create_time: float, since: float) -> bool:
    """Did a process with this ``create_time`` start at or after ``since`` (``create_clock()``)?

    Decision: within :data:`CREATE_TIME_SLACK_S` counts as after. A create time is floored to the
    clock tick, so a respawn made 3 ms after the signal looked up to 7 ms older than it and was
    taken for the gateway that was stopped (seen as a flaky test on a fast machine); callers exclude
    the stopped gateway by its pid, so the slack cannot make it look new."""
    return create_time >= since - CREATE_TIME_SLACK_S
