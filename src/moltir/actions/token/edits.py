"""The config edits of a rotation, written comment-preserving with the pre-image kept in the case."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir import keystore
from moltir.actions.base import StepContext
from moltir.actions.token.names import VALIDATION_KEY
from moltir.errors import env_error
from moltir.fsutil import os_error
from moltir.openclaw import Install, json5edit


def target_edits(install: Install, mode: str, token: str, command: str, backend: str, *,
                 drop_password: bool = False) -> dict[tuple[str, ...], Any]:
    """The config edits of a rotation. ``drop_password``: a ``gateway.auth.password`` is the old shared
    credential too (token mode does not use it): it goes (its value stays in the case's pre-image)."""
    edits: dict[tuple[str, ...], Any] = {("gateway", "auth", "mode"): "token"}
    if mode == "keyring-ref":
        edits[("gateway", "auth", "token")] = keystore.token_ref(install)
        edits[("secrets", "providers", keystore.PROVIDER_ALIAS)] = keystore.provider_config(command, backend)
    else:
        edits[("gateway", "auth", "token")] = token
    if drop_password:
        edits[("gateway", "auth", "password")] = json5edit.DELETE
    return edits


def read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise env_error(f"{path} does not exist: this OpenClaw install has no config",
                        "pass --config / --state-dir / --profile for the install to act on") from None
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None


def write_config(ctx: StepContext, edits: Mapping[tuple[str, ...], Any]) -> bool:
    """Apply ``edits`` through :class:`moltir.openclaw.configfile.ConfigFile` (comments kept, ``$include`` aware,
    pre-image saved to the case first, refused if the file changed meanwhile). True if it changed.

    A config that will hold a plaintext token is made 0600 (OpenClaw's own default)."""
    from moltir.openclaw.configfile import ConfigFile

    config = ConfigFile.load(ctx.install)
    results = config.write(config.plan_edits(edits), case=ctx.case)
    if config.validation is not None:
        ctx.event("token.config_validated", ok=config.validation.ok, how=config.validation.how,
                  ms=config.validation.ms)
        ctx.shared[VALIDATION_KEY] = (config.validation.describe(), config.validation_warning())
    token = edits.get(("gateway", "auth", "token"))
    if isinstance(token, str):
        for r in results:
            with contextlib.suppress(OSError):
                if r.path.stat().st_mode & 0o077:
                    os.chmod(r.path, 0o600)
    return bool(results)


def plan_diff(install: Install, edits: Mapping[tuple[str, ...], Any]) -> str:
    from moltir.openclaw.configfile import ConfigFile

    return "".join(fe.diff for fe in ConfigFile.load(install).plan_edits(edits))
