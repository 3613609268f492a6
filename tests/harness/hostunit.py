"""A gateway under a real systemd unit in a tests/harness/nspawn.py machine: the unit of OpenClaw's
own server installer (openclaw-ansible ``openclaw-host.service.j2``), its user, config and the
egress drop-in; polling it from the host. Shared by the nspawn tests."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request

from tests.harness.home import egress_env
from tests.harness.net import LOOPBACK, free_port, token_status, wait_until
from tests.harness.nspawn import Machine
from tests.harness.releases import Release, node_bin_dir

READY_TIMEOUT_S = float(os.environ.get("MOLTIR_TEST_GATEWAY_READY_TIMEOUT", "180"))
OC_USER, OC_HOME = "openclaw", "/home/openclaw"
HOST_UNIT = "openclaw.service"
CLI_UNIT = "openclaw-gateway.service"     # what `openclaw gateway install` names it

# openclaw-ansible roles/openclaw/templates/openclaw-host.service.j2 rendered with
# openclaw_user=openclaw, openclaw_home=/home/openclaw; verbatim (uid 1000 in XDG_RUNTIME_DIR and
# the bus path included) but for two lines: `After=network.target docker.service` and
# `Requires=docker.service` lose docker (there is none in the container: with Requires= on a
# missing unit the start fails, "Unit docker.service not found"), and ReadWritePaths= is a
# parameter: as published it is only ~/.openclaw, see test_published_host_unit_exits_78.
HOST_UNIT_TEXT = """\
[Unit]
Description=OpenClaw WhatsApp Gateway
After=network.target

[Service]
Type=simple
User=openclaw
Group=openclaw
WorkingDirectory=/home/openclaw

# Environment variables
Environment="PATH=/home/openclaw/.local/bin:/home/linuxbrew/.linuxbrew/bin:/usr/local/bin:/usr/bin:/bin"
Environment="PNPM_HOME=/home/openclaw/.local/share/pnpm"
Environment="HOME=/home/openclaw"
Environment="XDG_RUNTIME_DIR=/run/user/1000"

# DBus session bus
Environment="DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"

# Start command
ExecStart=/home/openclaw/.local/bin/openclaw gateway

# Restart policy
Restart=always
RestartSec=10

# Security hardening
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={read_write_paths}

# Logging
StandardOutput=journal
StandardError=journal
SyslogIdentifier=openclaw

[Install]
WantedBy=multi-user.target
"""
PUBLISHED_RW = f"{OC_HOME}/.openclaw"
WORKING_RW = f"{OC_HOME}/.openclaw {OC_HOME}/.cache"


def http_status(port: int, path: str) -> int:
    """Status of GET 127.0.0.1:PORT/path from the host; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def gateway_config(port: int, token: str) -> str:
    return json.dumps({
        "gateway": {"mode": "local", "bind": "loopback", "port": port, "auth": {"mode": "token", "token": token}},
        "update": {"checkOnStart": False},
    }, indent=2) + "\n"


def egress_dropin(proxy_url: str) -> str:
    """A drop-in with the test-only environment: the units themselves stay as shipped."""
    assignments = " ".join(f'"{k}={v}"' for k, v in egress_env(proxy_url).items())
    return f"[Service]\nEnvironment={assignments}\n"


def wait_gateway(m: Machine, unit: str, port: int, token: str, *, user: str | None = None,
                 timeout: float = READY_TIMEOUT_S) -> float:
    """From the host: poll until /readyz is 200 and the token is accepted (400 on /tools/invoke).
    Fails at once, with the journal, when the unit fails or waits for a restart."""
    t0 = time.monotonic()

    def ready() -> bool:
        st = m.show(unit, "ActiveState", "SubState", "Result", "ExecMainStatus", user=user)
        if st["ActiveState"] == "failed" or st["SubState"] == "auto-restart":
            raise AssertionError(f"{unit} is not coming up: {st}\n{m.journal(unit, user=user, lines=30)}")
        return http_status(port, "/readyz") == 200 and token_status(port, token, timeout=5) == 400

    try:
        wait_until(ready, timeout, interval=0.3, what=f"{unit} to answer on 127.0.0.1:{port}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{m.journal(unit, user=user, lines=30)}") from None
    return time.monotonic() - t0


def install_host_unit(m: Machine, rel: Release, proxy_url: str, read_write_paths: str,
                      make_cache_dir: bool = True, extra_config: dict[str, object] | None = None) -> tuple[int, str]:
    """User openclaw, its ~/.local/bin/{openclaw,node} (the template's PATH and ExecStart), its
    config, the host unit and the egress drop-in. Returns (port, token)."""
    m.run(["useradd", "--create-home", "--shell", "/bin/bash", OC_USER], check=True)
    m.run(["mkdir", "-p", f"{OC_HOME}/.local/bin"], user=OC_USER, check=True)
    m.run(["ln", "-s", str(rel.openclaw_bin), f"{OC_HOME}/.local/bin/openclaw"], user=OC_USER, check=True)
    m.run(["ln", "-s", str(node_bin_dir() / "node"), f"{OC_HOME}/.local/bin/node"], user=OC_USER, check=True)
    if make_cache_dir:  # ReadWritePaths= of a missing path fails the start with 226/NAMESPACE
        m.run(["mkdir", "-p", f"{OC_HOME}/.cache"], user=OC_USER, check=True)
    port, token = free_port(), f"test-token-{secrets.token_hex(20)}"
    config = gateway_config(port, token)
    if extra_config:
        config = json.dumps({**json.loads(config), **extra_config}, indent=2) + "\n"
    m.write_file(f"{OC_HOME}/.openclaw/openclaw.json", config, 0o600, owner=OC_USER)
    m.write_file(f"/etc/systemd/system/{HOST_UNIT}", HOST_UNIT_TEXT.format(read_write_paths=read_write_paths))
    m.write_file(f"/etc/systemd/system/{HOST_UNIT}.d/10-moltir-test-egress.conf", egress_dropin(proxy_url))
    m.systemctl("daemon-reload", check=True)
    return port, token


def journal_has(m: Machine, text: str, *args: str, timeout: float = 30) -> str:
    """Poll journalctl ARGS until ``text`` shows up (journald writes asynchronously)."""
    out = ""

    def found() -> bool:
        nonlocal out
        out = m.run(["journalctl", "--no-pager", "-o", "cat", *args], timeout=30).stdout
        return text in out

    try:
        wait_until(found, timeout, interval=0.3, what=f"{text!r} in journalctl {' '.join(args)}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; journal tail:\n{out[-3000:]}") from None
    return out


