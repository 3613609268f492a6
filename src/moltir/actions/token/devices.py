"""Paired devices: they keep their own tokens after a shared-token rotation (listed, or revoked)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from typing import Any

from moltir.actions.base import StepContext
from moltir.openclaw import Install


def list_devices(install: Install, token: str) -> tuple[list[dict[str, Any]], str]:
    """Paired devices (id, roles, platform, client): from devices/paired.json where the release keeps
    devices in files (up to 2026.7.x), else (SQLite, 2026.8.1 on) through the CLI."""
    if install.caps.state_store == "files":
        items, source = _paired_from_file(install)
    else:
        items, source = _paired_from_cli(install, token)
    if items is None:
        return [], source
    return [_device(item) for item in items if isinstance(item, Mapping)], source


def _paired_from_file(install: Install) -> tuple[Any, str]:
    """(the paired devices, where from) out of devices/paired.json, or (None, why not)."""
    paired = install.state_dir / "devices" / "paired.json"
    if not paired.is_file():
        # Never ask the CLI of a file-store release: its first connect from loopback is auto-paired
        # ("device pairing auto-approved" is in every release's dist), so listing the devices would MINT
        # a paired device whose token survives every rotation (openclaw-old-run.md §5).
        return None, f"{paired} (absent: no paired device)"
    try:
        data = json.loads(paired.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"cannot read {paired}: {exc}"
    return (list(data.values()) if isinstance(data, dict) else []), str(paired)


def _paired_from_cli(install: Install, token: str) -> tuple[Any, str]:
    """(the paired devices, where from) out of ``openclaw devices list``, or (None, why not)."""
    if install.binary is None:
        return None, "openclaw binary not found"
    try:
        proc = install.run_cli("devices", "list", "--json", timeout_s=90,
                               extra_env={"OPENCLAW_GATEWAY_TOKEN": token})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"openclaw devices list failed: {exc}"
    out = proc.stdout.decode("utf-8", "replace")
    try:
        data = json.loads(out[out.index("{"):])
    except ValueError:
        return None, f"openclaw devices list failed (rc {proc.returncode})"
    return (data.get("paired", []) if isinstance(data, dict) else []), "openclaw devices list"


def _device(item: Mapping[str, Any]) -> dict[str, Any]:
    roles = item.get("roles") or ([item["role"]] if item.get("role") else [])
    raw_tokens = item.get("tokens")
    tokens: Mapping[str, Any] = raw_tokens if isinstance(raw_tokens, Mapping) else {}
    live_roles = [r for r in roles
                  if not (isinstance(tokens.get(r), Mapping) and tokens[r].get("revokedAtMs"))]
    return {"id": str(item.get("deviceId") or item.get("id") or "?"), "roles": list(roles),
            "active_roles": live_roles, "platform": item.get("platform"), "client": item.get("clientId")}


def revoke_devices(install: Install, token: str, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Revoke each device's active roles through the CLI: one result per (device, role)."""
    results = []
    for dev in devices:
        for role in dev.get("active_roles") or dev.get("roles") or ["operator"]:
            try:
                proc = install.run_cli("devices", "revoke", "--device", dev["id"], "--role", role, "--json",
                                       timeout_s=90, extra_env={"OPENCLAW_GATEWAY_TOKEN": token})
                ok = proc.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            results.append({"id": dev["id"], "role": role, "revoked": ok})
    return results


def report_devices(ctx: StepContext, token: str, warnings: list[str]) -> dict[str, Any]:
    """The paired devices for the step's details; revoked with ``--revoke-devices``, else a warning."""
    devices, source = list_devices(ctx.install, token)
    info: dict[str, Any] = {"source": source, "paired": devices}
    active = [d for d in devices if d.get("active_roles")]
    if ctx.options.revoke_devices and active:
        info["revoked"] = revoke_devices(ctx.install, token, active)
        ctx.event("token.devices_revoked", devices=info["revoked"])
    elif active:
        warnings.append(f"{len(active)} paired device(s) keep their own tokens after a shared-token rotation "
                        f"({', '.join(d['id'][:12] for d in active)}): revoke them with --revoke-devices")
    return info
