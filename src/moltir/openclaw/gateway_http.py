"""Prove a gateway token against the live gateway, over HTTP on loopback.

``POST /tools/invoke`` with body ``{}`` answers 400 for an accepted token (the body is
invalid, but auth passed) and 401 for a refused one, on both 2026.9.x and 2026.1.x
(shared/research/openclaw-run.md §5, openclaw-old-run.md §4). It has no side effect.
``/healthz`` and ``/readyz`` answer 200 whatever the token and cannot tell tokens apart.
The CLI is NOT used: on 2026.1.29 it auto-pairs on loopback and then ignores the token.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass

ACCEPTED = 400
REFUSED = 401
DOWN = 0


def token_status(port: int, token: str, *, host: str = "127.0.0.1", timeout: float = 5.0) -> int:
    """HTTP status for ``token`` (400 accepted, 401 refused), or 0 when nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("POST", "/tools/invoke", body=b"{}",
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return DOWN
    finally:
        conn.close()


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class TokenProof:
    new_status: int
    old_status: int | None

    @property
    def ok(self) -> bool:
        return self.new_status == ACCEPTED and self.old_status in (None, REFUSED)


def wait_accepted(port: int, token: str, *, timeout_s: float, interval_s: float = 0.2) -> int:
    """Poll until ``token`` is accepted or ``timeout_s`` passes; return the last status."""
    deadline = time.monotonic() + timeout_s
    status = token_status(port, token)
    while status != ACCEPTED and time.monotonic() < deadline:
        time.sleep(interval_s)
        status = token_status(port, token)
    return status


def prove(port: int, new_token: str, old_token: str | None, *, timeout_s: float = 15.0) -> TokenProof:
    """New token accepted (waiting for it up to ``timeout_s``) and old token refused."""
    new_status = wait_accepted(port, new_token, timeout_s=timeout_s)
    old_status = token_status(port, old_token) if old_token and old_token != new_token else None
    return TokenProof(new_status, old_status)
