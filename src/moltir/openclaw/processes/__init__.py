"""psutil adapter: find an install's gateway processes, snapshot them, stop them.

No moltir policy lives here (what to refuse, what to record, when to fail is the action's
business); this module only answers "which processes", "what do they look like" and
"signal them, bounded". Facts it relies on (shared/research/openclaw-run.md §4,
openclaw-old-run.md §3, openclaw-facts.md §4):

* the gateway retitles itself: ``name()`` is ``openclaw-gateway`` (``clawdbot-gateway`` for
  clawdbot), ``/proc/PID/comm`` the 15-character ``openclaw-gatewa``, and ``cmdline()`` holds
  no arguments at all, so the install is identified from the process ENVIRONMENT
  (``OPENCLAW_STATE_DIR``, ``OPENCLAW_CONFIG_PATH``, ``HOME``, ``OPENCLAW_PROFILE``). Some
  releases title the gateway plain ``openclaw`` (seen on 2026.5.28: one process, no wrapper),
  the same title as the CLI and as the respawn wrapper of 2026.1.29-2026.4.1: such a process
  is a gateway when it wrote the install's lock, or when its environment resolves to the
  install and it listens on a TCP port (a CLI client never listens; a wrapper has the
  ``openclaw-gateway`` child and no socket);
* lock files (JSON, maybe padded with blanks) name the owner's ``pid``, ``port``,
  ``configPath``, ``createdAt`` and, on Linux, ``startTime`` (field 22 of ``/proc/PID/stat``).
  2026.9.x keeps them in ``<state>/tmp/openclaw-<uid>/`` and removes them on a clean stop;
  2026.1.29 keeps them in ``$TMPDIR/openclaw-<uid>/`` and never removes them (always stale
  after a stop), hence the pid-reuse checks (``locks``);
* 2026.1.29 runs an ``openclaw`` respawn wrapper whose child is the real gateway: killing the
  wrapper alone orphans the server, so both are signalled;
* 2026.9.x gateways have node worker children in their own sessions; a SIGTERM drain can hang
  ~325 s when a channel's network is unreachable and a second SIGTERM is ignored, so every
  wait here is bounded and ends in SIGKILL.

Modules: ``names`` (which processes are OpenClaw's), ``clock`` (process create times), ``locks``
(lock files), ``scan`` (find the gateways), ``describe`` (listeners and parents, for messages),
``snapshots``, ``terminate`` (bounded stop of a tree), ``respawn`` (who started it, did it come
back), ``cmdline`` (command lines for records and messages), ``capture`` (``run_capture``).
Callers use this package's names (``processes.find_gateways``), which tests may replace.
"""

from __future__ import annotations

from moltir.openclaw.processes.capture import run_capture
from moltir.openclaw.processes.clock import CREATE_TIME_SLACK_S, create_clock, started_since
from moltir.openclaw.processes.cmdline import one_line, scrub_argv, short_command
from moltir.openclaw.processes.describe import ancestry, describe_pid, port_listeners
from moltir.openclaw.processes.locks import LOCK_CLOCK_SLACK_S, LockFile, install_locks, lock_owner, read_lock
from moltir.openclaw.processes.names import (
    GATEWAY_NAMES,
    WRAPPER_NAMES,
    environ_install_paths,
    is_gateway_argv,
    is_gateway_name,
)
from moltir.openclaw.processes.respawn import launcher_of, respawned_by
from moltir.openclaw.processes.scan import (
    GatewayProcess,
    Source,
    describe_process,
    find_all_gateway_envs,
    find_gateways,
    listen_ports,
)
from moltir.openclaw.processes.snapshots import process_tree, snapshot_process, snapshot_tree
from moltir.openclaw.processes.terminate import TerminateResult, terminate_tree, wait_gone

__all__ = [
    "CREATE_TIME_SLACK_S", "GATEWAY_NAMES", "LOCK_CLOCK_SLACK_S", "WRAPPER_NAMES", "GatewayProcess", "LockFile",
    "Source", "TerminateResult", "ancestry", "create_clock", "describe_pid", "describe_process",
    "environ_install_paths", "find_all_gateway_envs", "find_gateways", "install_locks", "is_gateway_argv",
    "is_gateway_name", "launcher_of", "listen_ports", "lock_owner", "one_line", "port_listeners", "process_tree",
    "read_lock", "respawned_by", "run_capture", "scrub_argv", "short_command", "snapshot_process", "snapshot_tree",
    "started_since", "terminate_tree", "wait_gone",
]
