"""The ``sandbox`` setting of ``harden.config``: ``agents.defaults.sandbox.mode`` ``"non-main"`` when the
container engine OpenClaw would use is usable; else the step is refused with the reason (reported in the
plan and the result), never forced: a sandbox without an engine makes every sandboxed tool call fail
(2026.9.6 ``docs/gateway/sandboxing/modes-scope-and-backend.md``: "unavailable backends fail closed").

Facts (the packages' ``docs/gateway/sandboxing*.md``): ``agents.defaults.sandbox.mode`` is ``off``
(the default), ``non-main`` or ``all`` in every release; ``non-main`` sandboxes every session but the
main one, so group and channel sessions (what strangers reach) run in containers while the owner's own
chat stays on the host (moltir's choice: the docs' own example, the least disruptive mode that still
covers what the other harden steps expose). The engine: the ``docker`` CLI and its daemon (every
release; 2026.1.29 has no backend key), or the ``podman`` CLI with ``agents.defaults.sandbox.backend:
"podman"`` (capability ``sandbox_local_engines``). The image is ``agents.defaults.sandbox.docker.image``,
default ``openclaw-sandbox:bookworm-slim``, which OpenClaw does not pull: it must be in the engine's
store (``scripts/sandbox-setup.sh``).

Usable means: the engine's CLI is on PATH, ``ENGINE info`` answers (a daemon, for docker), and the image
is in its store (``ENGINE image inspect``). Remote backends (``ssh``, ``openshell``, ``crabbox``) are not
checked: the step is refused with that reason. A mode already ``non-main`` or ``all`` is left alone,
and no engine is asked then. ``podman info`` is only run when the config selects the podman backend
(for a user who never ran podman it creates podman's storage, see :mod:`moltir.openclaw.containers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from moltir.openclaw import containers
from moltir.openclaw.configfile import MISSING, get_path
from moltir.openclaw.json5edit import KeyPath
from moltir.text import shown

MODE_PATH: Final[KeyPath] = ("agents", "defaults", "sandbox", "mode")
MODE: Final = "non-main"
DEFAULT_IMAGE: Final = "openclaw-sandbox:bookworm-slim"
PROBE_TIMEOUT_S: Final = 15.0


def engine_problem(data: Mapping[str, Any], caps: Any, env: Mapping[str, str]) -> str:
    """Why the engine OpenClaw would use cannot run a sandbox now ("" when it can)."""
    backend = get_path(data, ("agents", "defaults", "sandbox", "backend"))
    engine = "docker" if backend is MISSING else str(backend)
    local = tuple(caps.value("sandbox_local_engines"))
    if engine not in local:
        return (f"the sandbox backend is {shown(engine, 40)!r}: moltir checks only the local engines this release "
                f"drives ({', '.join(local)})")
    image = get_path(data, ("agents", "defaults", "sandbox", "docker", "image"))
    image = DEFAULT_IMAGE if not isinstance(image, str) or not image else image
    rc, _out, err = containers.run(engine, ["info"], env, PROBE_TIMEOUT_S)
    if rc != 0:
        why = (err.strip().splitlines() or [f"exit {rc}"])[-1]
        return f"{engine} is not usable here ({shown(why, 160)})"
    rc, _out, _err = containers.run(engine, ["image", "inspect", image], env, PROBE_TIMEOUT_S)
    if rc != 0:
        return (f"the sandbox image {shown(image, 80)} is not in {engine}'s store (build it with OpenClaw's "
                "scripts/sandbox-setup.sh)")
    return ""


def wants_change(data: Mapping[str, Any]) -> bool:
    return get_path(data, MODE_PATH) not in ("non-main", "all")
