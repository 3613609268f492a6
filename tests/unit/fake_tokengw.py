"""A fake gateway that checks tokens the way OpenClaw does, for token.rotate/verify unit tests.

A real process named ``openclaw-gateway`` (prctl comm + argv0, like tests/unit/fakegw.py) with the
install in its environment, so ``moltir.openclaw.processes.find_gateways`` finds it the real way. It answers
``POST /tools/invoke`` with 400 for the token it resolved and 401 otherwise, and resolves it:

* at start, and whenever the config file's bytes change (OpenClaw's file watcher), unless
  ``frozen`` (a gateway that never reloads);
* on SIGUSR2 (2026.9.x: in-process restart, SecretRefs re-resolved), unless ``frozen``;
* with ``lag`` seconds, a reload resolves at once but serves the new token only ``lag`` s later,
  and every trigger (SIGUSR2, file change) that arrives meanwhile is lost (a slow restart);
* a plaintext ``gateway.auth.token`` as is; an exec SecretRef by running the provider's
  ``command`` + ``args`` with only ``passEnv`` from its own environment and the request on stdin.

Each resolution appends one line to ``<ready>.events`` (what triggered it, the fingerprint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = textwrap.dedent(r'''
    import ctypes, hashlib, json, os, signal, subprocess, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import json5

    cfg = json.loads(sys.argv[1])
    ctypes.CDLL(None).prctl(15, b"openclaw-gateway", 0, 0, 0)
    state = {"token": None, "seen": None, "usr2": False, "pending": None}

    def log(event, **kw):
        with open(cfg["ready"] + ".events", "a") as fh:
            fh.write(json.dumps({"event": event, **kw}) + "\n")

    def resolve(why):
        tok = fetch(why)
        if tok is None:
            return
        if cfg.get("lag"):
            state["pending"] = (tok, time.monotonic() + cfg["lag"], why)
            return
        state["token"] = tok
        log("resolved", why=why, fp=hashlib.sha256(tok.encode()).hexdigest()[:8] if tok else None)

    def fetch(why):
        raw = open(cfg["config_path"], "rb").read()
        state["seen"] = raw
        conf = json5.loads(raw.decode())
        tok = conf.get("gateway", {}).get("auth", {}).get("token")
        if isinstance(tok, dict):
            prov = conf["secrets"]["providers"][tok["provider"]]
            env = {k: os.environ[k] for k in prov.get("passEnv", []) if k in os.environ}
            req = json.dumps({"protocolVersion": 1, "provider": tok["provider"], "ids": [tok["id"]]})
            p = subprocess.run([prov["command"], *prov.get("args", [])], input=req, capture_output=True,
                               text=True, env=env)
            if p.returncode != 0:
                log("resolve_failed", why=why, rc=p.returncode)
                return None
            tok = json.loads(p.stdout)["values"].get(tok["id"])
        return tok

    def on_usr2(sig, frame):
        state["usr2"] = True
    signal.signal(signal.SIGUSR2, on_usr2)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass
        def do_POST(self):
            pending = state["pending"]
            if pending is not None:
                if time.monotonic() >= pending[1]:
                    state["token"], state["pending"] = pending[0], None
                    state["usr2"] = False
                    state["seen"] = open(cfg["config_path"], "rb").read()  # changes meanwhile are lost
                    log("resolved", why=pending[2], fp=hashlib.sha256(pending[0].encode()).hexdigest()[:8])
            elif not cfg.get("frozen"):
                if state["usr2"]:
                    state["usr2"] = False
                    resolve("SIGUSR2")
                elif open(cfg["config_path"], "rb").read() != state["seen"]:
                    resolve("file watch")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            auth = self.headers.get("Authorization", "")
            ok = state["token"] and auth == "Bearer " + state["token"]
            self.send_response(400 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    state["token"] = fetch("start")
    log("resolved", why="start", fp=hashlib.sha256(state["token"].encode()).hexdigest()[:8])
    server = HTTPServer(("127.0.0.1", cfg["port"]), H)
    with open(cfg["ready"] + ".tmp", "w") as fh:
        json.dump({"pid": os.getpid()}, fh)
    os.replace(cfg["ready"] + ".tmp", cfg["ready"])
    server.serve_forever()
''')


@dataclass
class TokenGateway:
    popen: subprocess.Popen[bytes]
    ready: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def events(self) -> list[dict[str, Any]]:
        path = Path(str(self.ready) + ".events")
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def wait_ready(self, timeout: float = 20.0) -> TokenGateway:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.popen.poll() is not None:
                raise RuntimeError(f"fake gateway exited with {self.popen.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("fake gateway not ready")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)


def spawn(tmp: Path, env: Mapping[str, str], *, config_path: Path, port: int, frozen: bool = False,
          lag: float = 0.0) -> TokenGateway:
    script = tmp / "fake_tokengw.py"
    script.write_text(SCRIPT)
    ready = tmp / f"tokengw-{port}.ready"
    cfg = {"config_path": str(config_path), "port": port, "ready": str(ready), "frozen": frozen, "lag": lag}
    # argv0 is not the venv's python, so the child would not find the venv's packages (json5) by itself
    child_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    popen = subprocess.Popen(["openclaw-gateway", str(script), json.dumps(cfg)], executable=sys.executable,
                             env=child_env, stdin=subprocess.DEVNULL)
    return TokenGateway(popen, ready).wait_ready()
