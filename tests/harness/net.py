"""Loopback networking helpers: free ports, polling with a deadline, the token check."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


def free_port(span: int = 1) -> int:
    """A loopback port that is free now, with ``span - 1`` free ports after it too.

    2026.1.29 also listens on PORT+3 (browser relay), so gateways ask for ``span=4``.
    """
    for _ in range(200):
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            base = int(s.getsockname()[1])
        if base + span >= 65535:
            continue
        if all(port_is_free(base + i) for i in range(1, span)):
            return base
    raise RuntimeError("no free loopback port range found")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_is_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def token_status(port: int, token: str | None, timeout: float = 5.0) -> int:
    """HTTP status of ``POST /tools/invoke`` with body ``{}``: 400 = token accepted, 401 = refused.

    Returns 0 when the gateway does not answer (connection refused / reset / timeout).
    """
    req = urllib.request.Request(
        f"http://{LOOPBACK}:{port}/tools/invoke", data=json.dumps({}).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token is not None else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0
