"""`make demo`: a sandbox OpenClaw 2026.9.6 home (same shape as the test fixture) with its real
gateway, fake Telegram and a private keyring, then moltir's commands against it.

    python -m tests.harness.demo        (run from the repository root; scripts/demo.sh does)

Everything lives under ``sandbox/`` (gitignored). Nothing keeps running afterwards: the gateway,
anything moltir started for the sandbox, the keyring daemons and the fakes are stopped, and a final
check proves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome, close_home, create_home
from tests.harness.leftovers import RUN_ID_VAR
from tests.harness.leftovers import main as leftover_check
from tests.harness.net import token_status
from tests.harness.procs import kill_leftovers, processes_for
from tests.harness.releases import REPO, release
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService, start_secret_service

SANDBOX = REPO / "sandbox"
COMMANDS: list[list[str]] = [
    ["doctor"],
    ["contain", "--yes", "--reason", "make demo: suspicious DMs on the alerts bot"],
    ["status"],
    ["evidence", "verify"],
    ["restore", "--yes", *accept_open_dms("2026.9.6")],  # the demo config's open DMs come back
    ["status"],
]


def say(text: str = "") -> None:
    print(text, flush=True)


def moltir_argv() -> list[str]:
    exe = REPO / ".venv" / "bin" / "moltir"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "moltir"]


def dm_policies(node: Any, path: str = "channels") -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if key == "dmPolicy" or (key == "policy" and path.endswith(".dm")):
                out.append(f"{here}={value}")
            else:
                out += dm_policies(value, here)
    return out


def summary(home: OpenClawHome, original_token: str) -> str:
    up = any(p.name().startswith("openclaw-gatewa") for p in processes_for(home.state_dir))
    lines = [f"gateway: {'running' if up else 'stopped'}"]
    if up:
        lines.append(f"original token -> HTTP {token_status(home.port, original_token)} (400 accepted, 401 refused)")
    try:
        cfg = home.read_config()
    except (OSError, ValueError) as exc:
        return "\n".join([*lines, f"config unreadable: {exc}"])
    token = cfg.get("gateway", {}).get("auth", {}).get("token")
    if isinstance(token, dict):
        lines.append(f"config token: SecretRef {token}")
    elif token == original_token:
        lines.append("config token: the original plaintext token")
    else:
        lines.append("config token: a new plaintext token")
    policies = dm_policies(cfg.get("channels", {}))
    disabled = sum(p.endswith("=disabled") for p in policies)
    lines.append(f"DM policies: {disabled}/{len(policies)} disabled  ({', '.join(policies)})")
    return "\n".join(lines)


def run_commands(home: OpenClawHome, env: dict[str, str]) -> list[str]:
    missing = []
    for cmd in COMMANDS:
        shown = "moltir " + " ".join(cmd)
        probe = subprocess.run([*moltir_argv(), *cmd[:2 if cmd[0] == "evidence" else 1], "--help"],
                               env=env, capture_output=True, text=True, timeout=60)
        if probe.returncode != 0:
            say(f"\n### {shown}: not there yet (`--help` exited {probe.returncode}); skipped")
            missing.append(shown)
            continue
        say(f"\n### {shown}")
        t0 = time.monotonic()
        proc = subprocess.run([*moltir_argv(), *cmd], env=env, cwd=home.home, capture_output=True, text=True,
                              timeout=900, stdin=subprocess.DEVNULL)
        for stream in (proc.stdout, proc.stderr):
            for line in stream.rstrip().splitlines():
                say(f"    {line}")
        say(f"--> exit {proc.returncode} in {time.monotonic() - t0:.1f}s")
        for line in summary(home, home.token).splitlines():
            say(f"    now: {line}")
    return missing


def main() -> int:
    rel = release("2026.9.6")
    reason = rel.missing()
    if reason:
        say(f"demo: {reason}")
        return 3
    if SANDBOX.exists():
        kill_leftovers(SANDBOX / "home" / ".openclaw")
        leftover_check(["--under", str(SANDBOX), "--quiet"])
        shutil.rmtree(SANDBOX)
    SANDBOX.mkdir()
    run_id = f"demo-{os.getpid()}"
    os.environ[RUN_ID_VAR] = run_id
    started = time.monotonic()
    home: OpenClawHome | None = None
    gateway: Gateway | None = None
    keyring: SecretService | None = None
    keyring_root = Path(tempfile.mkdtemp(prefix="moltir-demo-kr-"))  # socket paths must stay short
    rc = 0
    try:
        home = create_home(SANDBOX, rel)
        say(f"sandbox: HOME={home.home}\n         config={home.config_path} (commented JSON5, "
            f"telegram x3 accounts, whatsapp, discord, slack, matrix, msteams)")
        keyring = start_secret_service(keyring_root)
        say(f"keyring: private D-Bus {keyring.address} with an unlocked gnome-keyring")
        gateway = Gateway(home, log_path=SANDBOX / "gateway-console.log")
        gateway.start()
        say(f"gateway: openclaw {rel.id} pid {gateway.pid} on 127.0.0.1:{home.port}, ready after "
            f"{gateway.ready_after_s:.1f}s; telegram polling the fake Bot API at {home.telegram.url}")
        say(summary(home, home.token))
        say("note: the sandbox starts exposed on purpose (telegram 'alerts' and discord DMs are 'open'); "
            "restore puts those pre-incident values back, so expect its final audit to flag them.")
        env = keyring.with_keyring(home.env)
        env[RUN_ID_VAR] = run_id
        missing = run_commands(home, env)
        if missing:
            say(f"\nnot there yet: {', '.join(missing)}")
    except KeyboardInterrupt:
        say("\ndemo: interrupted")
        rc = 130
    except Exception as exc:
        say(f"\ndemo: FAILED: {exc}")
        rc = 1
    finally:
        if gateway is not None:
            gateway.stop()
        if home is not None:
            kill_leftovers(home.state_dir)
            close_home(home)
        if keyring is not None:
            keyring.stop()
        shutil.rmtree(keyring_root, ignore_errors=True)
        if leftover_check(["--run-id", run_id, "--under", str(SANDBOX)]) != 0:
            rc = rc or 1
    say(f"\ndemo: done in {time.monotonic() - started:.0f}s; sandbox left in {SANDBOX} for inspection; "
        "no process left running")
    return rc


if __name__ == "__main__":
    sys.exit(main())
