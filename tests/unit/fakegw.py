"""Fake gateway processes for unit tests: real processes that LOOK like OpenClaw's gateway.

Like the real one (shared/research/openclaw-run.md §4) a fake is named ``openclaw-gateway``
(comm set with prctl, argv[0] set at exec, so psutil's ``name()`` reports the full name), keeps
its install in its ENVIRONMENT, may listen on a loopback port, may write a lock file with the
real payload shape, may have a worker child in its own session, may ignore SIGTERM (the 325 s
drain hang), and may run under an ``openclaw`` wrapper that forwards SIGTERM (2026.1.29).
Readiness is a file the fake writes once set up: tests poll it, they never sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.harness import net
from tests.harness.net import free_port as free_port  # re-exported for the tests
from tests.harness.net import port_is_open as port_is_open

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """The harness's poller (never a bare sleep), polling a little faster for these small fakes."""
    return net.wait_until(predicate, timeout, interval=interval, what=what)


SCRIPT = textwrap.dedent(r'''
    import ctypes, json, os, signal, socket, subprocess, sys, time, datetime

    cfg = json.loads(sys.argv[1])
    libc = ctypes.CDLL(None)
    libc.prctl(15, cfg["comm"].encode(), 0, 0, 0)

    def ready(path):
        with open(path + ".tmp", "w") as fh:
            json.dump({"pid": os.getpid()}, fh)
        os.replace(path + ".tmp", path)

    if cfg["role"] == "wrapper":
        child_cfg = dict(cfg, role="gateway", comm="openclaw-gateway")
        child = subprocess.Popen(["openclaw-gateway", __file__, json.dumps(child_cfg)],
                                 executable=cfg["python"])
        def forward(sig, frame):
            child.send_signal(sig)
        signal.signal(signal.SIGTERM, forward)
        sys.exit(child.wait())

    if cfg["role"] == "worker":
        if cfg.get("stubborn"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        parent = os.getppid()
        ready(cfg["ready"])
        while True:  # like openclaw's workers: exit once the gateway is gone (unless stubborn)
            if not cfg.get("stubborn") and os.getppid() != parent:
                sys.exit(0)
            time.sleep(0.05)

    # the gateway
    if cfg.get("ignore_term"):
        signal.signal(signal.SIGTERM, lambda s, f: None)   # the drain that never ends
    else:
        signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))
    sock = None
    if cfg.get("port"):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cfg["port"]))
        sock.listen(8)
    if cfg.get("http_token_file"):   # keeps the token off the fake's own command line
        with open(cfg["http_token_file"]) as fh:
            cfg["http_token"] = fh.read().strip()
    if cfg.get("worker"):
        wcfg = {"role": "worker", "comm": "MainThread", "ready": cfg["ready"] + ".worker", "python": cfg["python"],
                "stubborn": cfg["worker"] == "stubborn"}
        subprocess.Popen([cfg["python"], __file__, json.dumps(wcfg)], start_new_session=True)
        while not os.path.exists(wcfg["ready"]):
            time.sleep(0.02)
    if cfg.get("lock_dir"):
        os.makedirs(cfg["lock_dir"], exist_ok=True)
        with open(f"/proc/{os.getpid()}/stat") as fh:
            stat = fh.read()
        ticks = int(stat[stat.rfind(")") + 1:].split()[19])
        payload = {"pid": os.getpid(), "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "configPath": cfg["config_path"], "port": cfg.get("port"), "startTime": ticks}
        with open(os.path.join(cfg["lock_dir"], cfg.get("lock_name", "gateway.state.lock")), "w") as fh:
            fh.write(json.dumps(payload) + " " * 64 + "\n")
    ready(cfg["ready"])
    while True:
        if sock is not None:
            sock.settimeout(0.2)
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                if cfg.get("http_token"):   # POST /tools/invoke: 400 = token accepted, 401 = refused
                    conn.settimeout(2)
                    data = conn.recv(65536).decode("latin-1")
                    ok = f"authorization: bearer {cfg['http_token']}".lower() in data.lower()
                    status = "400 Bad Request" if ok else "401 Unauthorized"
                    conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                                 .encode())
            except OSError:
                pass
            finally:
                conn.close()
        else:
            time.sleep(0.2)
''')


@dataclass
class FakeGateway:
    popen: subprocess.Popen[bytes]
    ready_file: Path
    cfg: dict[str, Any]

    @property
    def pid(self) -> int:
        """The gateway's pid (the wrapper's child in wrapper mode)."""
        data = json.loads(self.ready_file.read_text())
        return int(data["pid"])

    @property
    def launcher_pid(self) -> int:
        return self.popen.pid

    def wait_ready(self, timeout: float = 20.0) -> FakeGateway:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.popen.poll() is not None:
                raise RuntimeError(f"fake gateway exited early with {self.popen.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("fake gateway not ready")
            time.sleep(0.02)
        return self

    def worker_pid(self) -> int | None:
        path = Path(str(self.ready_file) + ".worker")
        return int(json.loads(path.read_text())["pid"]) if path.exists() else None

    def cleanup(self) -> None:
        pids = [self.popen.pid]
        with contextlib.suppress(Exception):
            pids.append(self.pid)
        with contextlib.suppress(Exception):
            w = self.worker_pid()
            if w:
                pids.append(w)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.popen.wait(timeout=10)


def script_path(tmp: Path) -> Path:
    script = tmp / "fakegw_script.py"
    if not script.exists():
        script.write_text(SCRIPT)
        script.chmod(0o755)
    return script


def fake_config(tmp: Path, *, port: int | None = None, http_token: str | None = None,
                ignore_term: bool = False, tag: str = "cmd") -> tuple[dict[str, Any], Path]:
    """A config for a fake gateway launched by someone else (a supervisor, gateway.start's command)."""
    ready = tmp / f"{tag}-{os.urandom(3).hex()}.ready"
    token_file = None
    if http_token:
        token_file = Path(str(ready) + ".token")
        token_file.write_text(http_token)
    cfg = {"role": "gateway", "comm": "openclaw-gateway", "ready": str(ready), "python": sys.executable,
           "port": port, "ignore_term": ignore_term, "worker": None, "lock_dir": None,
           "lock_name": "gateway.state.lock", "config_path": "",
           "http_token_file": str(token_file) if token_file else None}
    return cfg, ready


def shell_command(tmp: Path, cfg: dict[str, Any], name: str = "openclaw-gateway") -> list[str]:
    """argv that starts a fake gateway named ``name`` (bash ``exec -a`` sets argv[0])."""
    import shlex

    cfg = {**cfg, "comm": name}
    return ["bash", "-c", f"exec -a {shlex.quote(name)} {shlex.quote(sys.executable)} "
                          f"{shlex.quote(str(script_path(tmp)))} {shlex.quote(json.dumps(cfg))}"]


def spawn(tmp: Path, env: Mapping[str, str], *, port: int | None = None, ignore_term: bool = False,
          worker: str | None = None, lock_dir: Path | None = None, lock_name: str = "gateway.state.lock",
          config_path: str = "", wrapper: bool = False, name: str = "openclaw-gateway",
          preexec: Any = None, tag: str = "gw", http_token: str | None = None) -> FakeGateway:
    """Start a fake gateway (``worker``: None | "polite" | "stubborn")."""
    script = script_path(tmp)
    n = 0
    while (tmp / f"{tag}{n}.ready").exists() or (tmp / f"{tag}{n}.ready.claimed").exists():
        n += 1
    ready = tmp / f"{tag}{n}.ready"
    (tmp / f"{tag}{n}.ready.claimed").touch()
    cfg: dict[str, Any] = {
        "role": "wrapper" if wrapper else "gateway",
        "comm": "openclaw" if wrapper else name,
        "ready": str(ready), "python": sys.executable, "port": port, "ignore_term": ignore_term, "worker": worker,
        "lock_dir": str(lock_dir) if lock_dir else None, "lock_name": lock_name, "config_path": config_path,
        "http_token_file": None,
    }
    if http_token:
        token_file = tmp / f"{tag}{n}.token"
        token_file.write_text(http_token)
        cfg["http_token_file"] = str(token_file)
    argv0 = "openclaw" if wrapper else name
    popen = subprocess.Popen([argv0, str(script), json.dumps(cfg)], executable=sys.executable,
                             env=dict(env), stdin=subprocess.DEVNULL, preexec_fn=preexec)
    return FakeGateway(popen, ready, cfg)
