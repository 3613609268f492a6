"""Run the real ``openclaw gateway run`` for one home, wait for it, and stop it without leftovers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from tests.harness.home import OpenClawHome
from tests.harness.net import token_status, wait_until
from tests.harness.procs import describe, kill_leftovers, kill_procs, processes_for

READY_TIMEOUT_S = float(os.environ.get("MOLTIR_TEST_GATEWAY_READY_TIMEOUT", "180"))
STOP_TIMEOUT_S = 10.0


class GatewayError(RuntimeError):
    pass


class Gateway:
    """One gateway process tree for one :class:`OpenClawHome`.

    Started with ``start_new_session`` and never with ``--token`` on its command line (that
    would pin the token and break rotation); stdout+stderr go to :attr:`log_path`.
    """

    def __init__(self, home: OpenClawHome, log_path: Path | None = None) -> None:
        self.home = home
        self.log_path = log_path or home.home / "gateway-console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.ready_after_s: float | None = None
        self.last_stop_killed: list[int] = []   # pids that needed SIGKILL at the last stop

    # ---- facts ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.home.port

    @property
    def token(self) -> str:
        return self.home.token

    @property
    def pid(self) -> int:
        """The pid we launched: the gateway itself, or its ``openclaw`` respawn wrapper where the
        release has one (``Facts.respawn_wrapper``: 2026.1.29, 2026.2.25)."""
        if self.proc is None:
            raise GatewayError("gateway not started")
        return self.proc.pid

    @property
    def gateway_pid(self) -> int:
        """The process that serves the port. Its title differs (``Facts.gateway_title``:
        ``openclaw-gateway``, but ``openclaw`` on 2026.5.28), and after an external restart on a
        wrapper release it is a new, detached process: so found by its listening socket."""
        procs = processes_for(self.home.state_dir)
        for proc in procs:
            try:
                if any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                       for c in proc.net_connections("inet")):
                    return proc.pid
            except psutil.Error:
                continue
        for proc in procs:
            try:
                if proc.name() == self.home.release.facts.gateway_title and proc.pid != self.pid:
                    return proc.pid
            except psutil.Error:
                continue
        return self.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def token_status(self, token: str | None) -> int:
        """400 = accepted, 401 = refused, 0 = no answer (``POST /tools/invoke`` with ``{}``)."""
        return token_status(self.port, token)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no gateway console log)"
        return "\n".join(text.splitlines()[-lines:])

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT_S, wait_telegram: bool = True) -> Gateway:
        """Launch and wait until the right token gets 400 and, when telegram is enabled in the
        config and ``wait_telegram``, until it polls the fake (channels start after the HTTP
        listener from 2026.5.28 on; stopping a gateway whose channels are mid-start is asking
        for hangs)."""
        if self.running:
            raise GatewayError(f"gateway already running (pid {self.pid})")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== moltir harness: start #{self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(self.home.openclaw_bin), "gateway", "run"], env=self.home.env, cwd=self.home.home,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.monotonic()
        polls_before = self.home.telegram.methods().count("getUpdates")
        try:
            self.wait_ready(timeout)
            if wait_telegram and self._telegram_enabled():
                self._wait_telegram(polls_before, max(30.0, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.stop()
            raise
        self.ready_after_s = time.monotonic() - t0
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll the token check until the right token gets 400 (no /readyz before 2026.3.1)."""
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise GatewayError(f"gateway exited with rc {self.proc.returncode} before it was ready; "
                                   f"console log tail:\n{self.log_tail()}")
            return self.token_status(self.token) == 400
        try:
            wait_until(ready, timeout, interval=0.2, what=f"gateway on port {self.port}")
        except TimeoutError as exc:
            raise GatewayError(f"{exc}; console log tail:\n{self.log_tail()}") from None

    def _telegram_enabled(self) -> bool:
        try:
            telegram = self.home.read_config().get("channels", {}).get("telegram", {})
        except (OSError, ValueError):
            return False
        return isinstance(telegram, dict) and telegram.get("enabled", True) is not False

    def _wait_telegram(self, polls_before: int, timeout: float) -> None:
        def polling() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise GatewayError(f"gateway exited with rc {self.proc.returncode} while its channels started; "
                                   f"console log tail:\n{self.log_tail()}")
            return self.home.telegram.methods().count("getUpdates") > polls_before
        try:
            wait_until(polling, timeout, interval=0.2, what="telegram to poll the fake Bot API")
        except TimeoutError as exc:
            raise GatewayError(f"{exc}; console log tail:\n{self.log_tail()}") from None

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL the group and every process of this state
        dir. Returns the launched process's exit code (None if it was not running)."""
        rc: int | None = None
        self.last_stop_killed = []
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    rc = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(self.proc.pid, signal.SIGKILL)
                        self.last_stop_killed.append(self.proc.pid)
                    except ProcessLookupError:
                        pass
                    rc = self.proc.wait(timeout=10)
            else:
                rc = self.proc.returncode
        # Children exit on their own after the parent. A gateway that restarted itself as a new
        # process outlives the launched one (2026.2.25 on SIGUSR1: "full process restart",
        # detached, parent init): it gets a SIGTERM too before anything is SIGKILLed.
        deadline = time.monotonic() + timeout
        termed: set[int] = set()
        while (left := processes_for(self.home.state_dir)) and time.monotonic() < deadline:
            for proc in left:
                if proc.pid not in termed and _is_gateway(proc):
                    with contextlib.suppress(psutil.Error):
                        proc.terminate()
                    termed.add(proc.pid)
            time.sleep(0.1)
        self.last_stop_killed += kill_leftovers(self.home.state_dir)
        return rc

    def restart(self, timeout: float = READY_TIMEOUT_S) -> Gateway:
        self.stop()
        return self.start(timeout)

    def assert_stopped(self) -> None:
        left = processes_for(self.home.state_dir)
        if left:
            kill_procs(left)
            raise AssertionError(f"gateway processes survived teardown: {describe(left)}")


def _is_gateway(proc: psutil.Process) -> bool:
    """A gateway or respawn-wrapper process (not 2026.9.6's ``MainThread`` helper children)."""
    try:
        return proc.name() in ("openclaw-gateway", "openclaw")
    except psutil.Error:
        return False
