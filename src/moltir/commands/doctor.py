"""``moltir doctor``: what install moltir finds, and each problem with its fix.

Checks that belong to an adapter live in that adapter (``proc``, ``services``, ``keystore``)
and are picked up here when present, so the doctor grows with the actions.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

from moltir import paths
from moltir.errors import MoltirError
from moltir.openclaw import Install
from moltir.text import shown

Check = tuple[str, bool, str]

# Not yet done, rather than broken: a token still in plaintext (and so none in the keyring) is the
# normal state before the first `moltir contain` or `moltir drill`. Shown with "!", never exit 3.
ADVISORY = frozenset({"gateway token in keyring", "gateway token source", "openclaw release"})


def _config_checks(install: Install) -> list[Check]:
    checks: list[Check] = []
    path = install.config_path
    if path.is_symlink():
        checks.append(("config", False, f"{path} is a symlink; OpenClaw and moltir need a regular file "
                                        "(replace the link with the file it points to)"))
    elif not path.exists():
        checks.append(("config", False, f"{path} does not exist (pass --config or --state-dir)"))
    else:
        try:
            install.read_config()
            mode = path.stat().st_mode & 0o777
            ok = not mode & 0o077
            checks.append(("config", True, f"{path} parses (mode {mode:o})"))
            if not ok:
                checks.append(("config permissions", False, f"{path} is readable by others: chmod 600 {path}"))
        except MoltirError as exc:
            checks.append(("config", False, exc.one_line()))
    for var in ("OPENCLAW_CONFIG_READONLY", "OPENCLAW_NIX_MODE"):
        if install.env.get(var) == "1":
            checks.append(("config writable", False, f"{var}=1 makes the config read-only: moltir cannot "
                                                     "disable DMs or rotate the token (unset it for the incident)"))
    return checks


def _adapter_checks(module: str, install: Install) -> list[Check]:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return []
    fn = getattr(mod, "doctor_checks", None)
    if fn is None:
        return []
    try:
        return list(fn(install))
    except MoltirError as exc:
        return [(module.rsplit(".", 1)[-1], False, exc.one_line())]


def build(install: Install) -> dict[str, Any]:
    checks: list[Check] = []
    if install.binary is None:
        checks.append(("openclaw binary", False, "not found on PATH: pass --openclaw-bin PATH"))
    else:
        checks.append(("openclaw binary", True, f"{install.binary} ({install.product} {install.version or '?'})"))
    caps = install.caps
    release = (f"{install.product} {caps.release} (from {caps.basis})" if caps.release is not None
               else "unknown: no version from the binary or the config")
    caps_warnings = caps.warnings
    checks.append(("openclaw release", not caps_warnings, "; ".join([release, *caps_warnings, *install.notes])))
    state_ok = install.state_dir.is_dir()
    checks.append(("state dir", state_ok, str(install.state_dir) if state_ok else
                   f"{install.state_dir} does not exist (pass --state-dir or --profile)"))
    if state_ok and install.state_dir.stat().st_mode & 0o077:
        checks.append(("state dir permissions", False, f"chmod 700 {install.state_dir}"))
    checks += _config_checks(install)
    for module in ("moltir.openclaw.processes", "moltir.openclaw.services", "moltir.keystore"):
        checks += _adapter_checks(module, install)
    home = paths.moltir_home(install.env)
    checks.append(("moltir home", True, f"{home} (cases, locks, drill history)"))
    def level(name: str, ok: bool) -> str:
        return "ok" if ok else ("advice" if name in ADVISORY else "problem")

    return {
        "ok": all(ok or name in ADVISORY for name, ok, _ in checks),
        "install": install.describe(),
        "capabilities": caps.describe(),
        "uid": os.getuid(),
        "checks": [{"check": name, "ok": ok, "level": level(name, ok), "detail": detail}
                   for name, ok, detail in checks],
    }


def render(report: dict[str, Any]) -> str:
    lines = []
    marks = {"ok": "✓", "advice": "!", "problem": "✗"}
    for c in report["checks"]:
        lines.append(f"{marks[c['level']]} {c['check']:<22} {c['detail']}")
    caps = report.get("capabilities") or {}
    if caps.get("answers"):
        lines.append("capabilities of this release (what moltir's actions go by):")
        for name, ans in caps["answers"].items():
            value = ans["value"]
            text = ", ".join(value) if isinstance(value, list) else json.dumps(value)
            lines.append(f"  {name:<26} {text:<18} {ans['source']}")
    if not report["ok"]:
        lines.append("problems found: fix the ✗ lines above")
    else:
        lines.append("ready" + (" (the ! lines are advice)" if any(c["level"] == "advice" for c in report["checks"])
                                else ""))
    return "\n".join(shown(ln, 4000) for ln in lines)
