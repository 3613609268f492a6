"""Run one command from a small process and report its wall time and its own peak RSS.

    python -I -S bench/launch.py RESULT_FILE COMMAND [ARG...]

Why: a child's ``ru_maxrss`` starts from the RSS of the process that forked it (Linux records
the old address space's high-water mark at exec, and fork/vfork share or copy the parent's
pages), so a command spawned straight from the bench -- a Python process holding tens of MiB --
would report at least that. Forked from this tiny launcher instead, the floor is the launcher's
own few MiB (bench/RESULTS.md gives it: the peak RSS of ``true``). The time is measured here too,
from just before the fork to the reaping ``wait4``, so the launcher's own start-up is not in it.
Writes "<elapsed seconds> <maxrss KiB>" to RESULT_FILE and exits with the command's exit code.
Standard library only, no site import: keep it small.
"""

import os
import sys
import time


def main() -> int:
    result, argv = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - t0
    with open(result, "w") as fh:
        fh.write(f"{elapsed:.6f} {usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
