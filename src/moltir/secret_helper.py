"""``moltir-secret``: OpenClaw's exec secret provider, backed by the OS keyring.

OpenClaw (2026.9.x) runs it with no shell and only the provider's ``passEnv`` variables,
writes one request to stdin and reads one JSON object from stdout::

    stdin   {"protocolVersion": 1, "provider": "moltir", "ids": ["gateway-token:<install key>"]}
    stdout  {"protocolVersion": 1, "values": {"gateway-token:<install key>": "<token>"}}
            + "errors": {"<id>": {"code": "NOT_FOUND"}} for ids the keyring does not hold

Each id is a keyring entry of service ``moltir`` (``--service`` to change it). Exit codes:
0 answered (some ids may be in ``errors``) · 1 the keyring cannot be read (one line on
stderr; OpenClaw then refuses to start or keeps the last good token) · 2 bad request.

``--backend module.Class`` pins the keyring backend (moltir writes the one it stored the
token with), which also skips keyring's backend discovery: the helper stays fast. When the
gateway's environment has no ``DBUS_SESSION_BUS_ADDRESS`` but ``$XDG_RUNTIME_DIR/bus``
exists (a systemd user session), that bus is used, as libdbus does.

Nothing secret is ever written to stderr; this module imports only the standard library and
keyring (lazily, after the request has been validated).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,255}$")
MAX_REQUEST = 1 << 20
USAGE = "moltir-secret [--service NAME] [--backend module.Class] < request.json"


def _fail(message: str, code: int) -> int:
    sys.stderr.write("moltir-secret: " + " ".join(message.split())[:400] + "\n")
    sys.stderr.flush()
    return code


def _parse_args(argv: Sequence[str]) -> tuple[str, str | None] | str:
    service, backend = "moltir", None
    items = list(argv)
    while items:
        arg = items.pop(0)
        if arg in ("--service", "--backend") and items:
            value = items.pop(0)
            if arg == "--service":
                service = value
            else:
                backend = value
        elif arg.startswith("--service="):
            service = arg.split("=", 1)[1]
        elif arg.startswith("--backend="):
            backend = arg.split("=", 1)[1]
        else:
            return f"unknown argument {arg!r} (usage: {USAGE})"
    return service, backend


def _parse_request(raw: str) -> list[str] | str:
    try:
        request = json.loads(raw)
    except ValueError:
        return "the request on stdin is not JSON"
    if not isinstance(request, dict):
        return "the request must be a JSON object"
    if request.get("protocolVersion") != 1:
        return f"unsupported protocolVersion {request.get('protocolVersion')!r} (this helper speaks 1)"
    ids = request.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "the request must carry 'ids', a list of strings"
    return list(ids)


def load_backend(name: str | None) -> Any:
    """The keyring backend class ``name`` (``module.Class``), instantiated; keyring's choice when None."""
    if not name:
        import keyring

        return keyring.get_keyring()
    module_name, _, class_name = name.rpartition(".")
    if not module_name:
        raise ValueError(f"--backend {name!r} is not module.Class")
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        # a custom backend found through keyringrc.cfg's keyring-path, as keyring itself does
        import configparser

        from keyring.core import _config_path, _load_keyring_path

        config = configparser.RawConfigParser()
        config.read(_config_path(), encoding="utf-8")  # type: ignore[no-untyped-call]
        _load_keyring_path(config)
        module = importlib.import_module(module_name)
    return getattr(module, class_name)()


def _default_bus() -> None:
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.exists(os.path.join(runtime, "bus")):  # noqa: PTH110, PTH118 - no pathlib import
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + os.path.join(runtime, "bus")  # noqa: PTH118


def answer(ids: Sequence[str], service: str, backend: Any) -> dict[str, Any]:
    """The response for ``ids``; keyring exceptions propagate (the caller turns them into exit 1)."""
    values: dict[str, str] = {}
    errors: dict[str, dict[str, str]] = {}
    for ident in ids:
        if not ID_RE.match(ident):
            errors[ident] = {"code": "INVALID_ID"}
            continue
        value = backend.get_password(service, ident)
        if isinstance(value, str) and value:
            values[ident] = value
        else:
            errors[ident] = {"code": "NOT_FOUND"}
    response: dict[str, Any] = {"protocolVersion": 1, "values": values}
    if errors:
        response["errors"] = errors
    return response


def main(argv: Sequence[str] | None = None) -> int:
    parsed = _parse_args(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, str):
        return _fail(parsed, 2)
    service, backend_name = parsed
    raw = sys.stdin.read(MAX_REQUEST + 1)
    if len(raw) > MAX_REQUEST:
        return _fail("the request is larger than 1 MiB", 2)
    ids = _parse_request(raw)
    if isinstance(ids, str):
        return _fail(ids, 2)
    _default_bus()
    try:
        backend = load_backend(backend_name)
        response = answer(ids, service, backend)
    except (ImportError, AttributeError, ValueError) as exc:
        return _fail(f"cannot load keyring backend {backend_name}: {type(exc).__name__}: {exc}", 1)
    except Exception as exc:
        return _fail(f"cannot read the keyring ({type(exc).__name__}): {exc}", 1)
    sys.stdout.write(json.dumps(response, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
