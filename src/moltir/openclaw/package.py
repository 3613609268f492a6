"""Facts read from an installed OpenClaw package: its version, and cheap evidence of features.

Where the version comes from, best first (:func:`release_of`):

1. ``package.json`` of the npm package the binary belongs to (``openclaw`` or ``clawdbot``);
2. ``openclaw --version``, bounded (a binary with no package around it: a wrapper script,
   a vendored build), never with a credential in its environment;
3. the config's ``meta.lastTouchedVersion`` (OpenClaw stamps it on every write it makes);
4. nothing: :mod:`moltir.openclaw.capabilities` then reasons from the state dir.

Probes (:func:`probe`) look for one feature's evidence in the package files; each returns a
value and the evidence, or None when the package says nothing either way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from moltir.openclaw import versions

VERSION_TIMEOUT_S: Final = 20.0
_SIGNAL_RE: Final = re.compile(rb"""process\.on\(\s*["'](SIGUSR[12])["']""")


@dataclass(frozen=True)
class Probe:
    value: Any
    evidence: str


def read_package_json(root: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_VERSIONS: dict[tuple[str, int, int], str | None] = {}


def version_from_binary(binary: Path, env: Mapping[str, str], timeout_s: float = VERSION_TIMEOUT_S,
                        run_as: tuple[int, int] | None = None) -> str | None:
    """``BINARY --version``'s release number, or None (no answer in time, no number in it).

    The child gets ``env`` minus every credential variable; its whole session is ended on timeout
    (an openclaw respawn wrapper would otherwise leave its real child behind). Asked once per binary
    (path, size, mtime) in this process."""
    try:
        st = binary.stat()
    except OSError:
        return None
    key = (os.path.realpath(binary), st.st_size, st.st_mtime_ns)
    if key not in _VERSIONS:
        _VERSIONS[key] = _ask_version(binary, env, timeout_s, run_as)
    return _VERSIONS[key]


def _ask_version(binary: Path, env: Mapping[str, str], timeout_s: float,
                 run_as: tuple[int, int] | None) -> str | None:
    from moltir.openclaw.install import CREDENTIAL_VARS

    child_env = {k: v for k, v in env.items() if k not in CREDENTIAL_VARS}
    child_env.setdefault("NO_COLOR", "1")
    try:
        from moltir.openclaw.processes import run_capture

        proc = run_capture([str(binary), "--version"], timeout_s=timeout_s, env=child_env, cwd=None, run_as=run_as)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    got = versions.parse(proc.stdout.decode("utf-8", "replace").strip().splitlines()[0]
                         if proc.stdout.strip() else "")
    return got.text if got else None


# ---- probes -------------------------------------------------------------------------------

def _docs(root: Path, *parts: str) -> Path:
    return root.joinpath("docs", *parts)


def _probe_secret_refs(root: Path) -> Probe | None:
    for rel in (("cli", "secrets.md"), ("gateway", "secrets.md"), ("gateway", "secrets")):
        if _docs(root, *rel).exists():
            return Probe(True, "docs/" + "/".join(rel))
    return None if not _docs(root, "cli").is_dir() else Probe(False, "no docs/cli/secrets.md")


def _probe_audit_ledger(root: Path) -> Probe | None:
    if _docs(root, "cli", "audit.md").is_file():
        return Probe(True, "docs/cli/audit.md")
    return None if not _docs(root, "cli").is_dir() else Probe(False, "no docs/cli/audit.md")


def _probe_config_validate(root: Path) -> Probe | None:
    try:
        text = _docs(root, "cli", "config.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = "config validate" in text
    return Probe("config validate" if found else "config get",
                 "docs/cli/config.md " + ("documents" if found else "does not document") + " 'config validate'")


def _dist_files(root: Path) -> Iterator[Path]:
    """The package's bundled JavaScript, the files named like the gateway's run loop first."""
    dist = root / "dist"
    found: list[Path] = []
    for folder, dirs, files in os.walk(dist):
        dirs[:] = [d for d in dirs if d not in ("node_modules", "extensions", "control-ui", "canvas-host")]
        found += [Path(folder, f) for f in files if f.endswith((".js", ".mjs", ".cjs"))]
    found.sort(key=lambda p: (not (p.name.startswith("run") or "gateway" in p.name), str(p)))
    yield from found


def _probe_restart_signal(root: Path) -> Probe | None:
    """Which signal the gateway's run loop installs a handler for (``process.on("SIGUSR…")``).

    SIGUSR2 wins when both appear (2026.9.6 made SIGUSR1 the inspector's); None when the
    package has no dist to read."""
    seen: dict[str, str] = {}
    for path in _dist_files(root):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for m in _SIGNAL_RE.finditer(data):
            seen.setdefault(m[1].decode(), str(path.relative_to(root)))
        if "SIGUSR2" in seen:
            break
    if not seen:
        return None if not (root / "dist").is_dir() else Probe(None, "no process.on(\"SIGUSR…\") handler in dist/")
    sig = "SIGUSR2" if "SIGUSR2" in seen else "SIGUSR1"
    return Probe(sig, f'process.on("{sig}") in {seen[sig]}')


def _probe_respawn_wrapper(root: Path) -> Probe | None:
    entry = root / "dist" / "entry.js"
    try:
        text = entry.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if "shouldSkipRespawnForArgv" in text:
        return Probe(False, "dist/entry.js skips the respawn for foreground runs (shouldSkipRespawnForArgv)")
    return None


PROBES: Final[Mapping[str, Callable[[Path], Probe | None]]] = {
    "secret_refs": _probe_secret_refs,
    "audit_ledger": _probe_audit_ledger,
    "config_validate": _probe_config_validate,
    "restart_signal": _probe_restart_signal,
    "respawn_wrapper": _probe_respawn_wrapper,
}


def probe(name: str, root: Path) -> Probe | None:
    fn = PROBES.get(name)
    return fn(root) if fn is not None else None
