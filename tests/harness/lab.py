"""A hands-on lab: one sandbox OpenClaw home with its real gateway, fakes and a private keyring,
kept up until you stop it, for trying moltir by hand the way a user would.

    .venv/bin/python -m tests.harness.lab DIR [--release ID] [--no-gateway]   # ID: releases.ALL_IDS
    . DIR/env.sh              # in another shell: HOME, OPENCLAW_*, PATH, the keyring's D-Bus
    moltir doctor; moltir contain --dry-run; ...
    touch DIR/STOP            # (or Ctrl-C / SIGTERM) tears everything down, leaving no process

``DIR/info.json`` holds the port, the original token and the pids. The harness objects (fake
Telegram, fake LLM) live in this process, so it must keep running while you work. Not used by the
test suite; the same code as the fixtures and ``make demo``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.procs import kill_leftovers
from tests.harness.releases import ALL_IDS, RELEASE_IDS, release
from tests.harness.secret_service import SecretService, start_secret_service


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.harness.lab", description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--release", choices=ALL_IDS, default=RELEASE_IDS[0])
    ap.add_argument("--no-gateway", action="store_true", help="lay out the home but do not start the gateway")
    args = ap.parse_args(argv)
    rel = release(args.release)
    if (reason := rel.missing()) is not None:
        print(f"lab: {reason}", file=sys.stderr)
        return 3
    root: Path = args.dir.resolve()
    if root.exists() and any(root.iterdir()):
        print(f"lab: {root} is not empty", file=sys.stderr)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    home: OpenClawHome | None = None
    gateway: Gateway | None = None
    keyring: SecretService | None = None
    keyring_root = Path(tempfile.mkdtemp(prefix="moltir-lab-kr-"))  # socket paths must stay short
    try:
        home = create_home(root, rel)
        keyring = start_secret_service(keyring_root)
        env = keyring.with_keyring(home.env)
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"   # moltir of this checkout
        if not args.no_gateway:
            gateway = Gateway(home, log_path=root / "gateway-console.log")
            gateway.start()
        (root / "env.sh").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
                                     + f"cd {shlex.quote(str(home.home))}\n", encoding="utf-8")
        info = {"release": rel.id, "port": home.port, "token": home.token, "config": str(home.config_path),
                "state_dir": str(home.state_dir), "gateway_pid": gateway.gateway_pid if gateway else None,
                "keyring_pids": keyring.pids, "telegram": home.telegram.url}
        (root / "info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        print(f"lab: ready ({rel.id}, port {home.port}); . {root}/env.sh; touch {root}/STOP to end", flush=True)
        while not stop["now"] and not (root / "STOP").exists():
            time.sleep(0.5)
    finally:
        if gateway is not None:
            gateway.stop()
        if home is not None:
            kill_leftovers(home.state_dir)
            close_home(home)
        if keyring is not None:
            keyring.stop()
        shutil.rmtree(keyring_root, ignore_errors=True)
        print("lab: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
