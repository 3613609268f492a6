"""OpenClaw's own copies of the config (``.bak*``, ``.last-good``, ``.clobbered.*``): found, and
rewritten (or removed) so that none can bring the old token back."""

from __future__ import annotations

import re
from pathlib import Path

from moltir.actions.base import StepContext
from moltir.actions.token.edits import target_edits
from moltir.actions.token.reading import auth_holds
from moltir.errors import MoltirError
from moltir.fsutil import atomic_write, os_error
from moltir.openclaw import Install, json5edit


def file_holds(path: Path, token: str) -> bool:
    """Does ``path`` still make ``token`` the gateway's credential (a file that does not parse: does it hold it)?"""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        return auth_holds(json5edit.parse(text, source=str(path)).value, token)
    except (OSError, MoltirError):
        return token in path.read_text(errors="replace") if path.exists() else False


def config_backups(install: Install) -> list[Path]:
    """OpenClaw's own copies of the config: ``.bak``, ``.bak.N``, ``.last-good``, ``.clobbered.*``."""
    cfg = install.config_path
    folder, name = cfg.parent, cfg.name
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        n = p.name
        if not n.startswith(name + ".") or n.endswith(".tmp") or not p.is_file() or p.is_symlink():
            continue
        rest = n[len(name) + 1:]
        if re.match(r"^(bak(\.\d+)?|last-good|clobbered\..+)$", rest):
            out.append(p)
    return out


def neutralise_backups(ctx: StepContext, mode: str, new: str, command: str, backend: str,
                       old: str | None) -> list[dict[str, str]]:
    """Give every backup the rotation's edits (the original copied to ``preimage/backups/`` first); one
    that cannot be edited, or would still make the old token the credential, is removed."""
    out = []
    edits = target_edits(ctx.install, mode, new, command, backend, drop_password=True)
    for path in config_backups(ctx.install):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        ctx.case.write_file(f"preimage/backups/{path.name}", raw)
        text = raw.decode("utf-8", errors="replace")
        action = "rewritten"
        try:
            edited = json5edit.set_values(text, edits, source=str(path))
            if auth_holds(json5edit.parse(edited, source=str(path)).value, old):
                raise ValueError("the old token is still the gateway's credential")
            st = path.stat()
            atomic_write(path, edited.encode("utf-8"), mode=0o600, owner=(st.st_uid, st.st_gid))
        except (MoltirError, ValueError):
            action = "removed"
            try:
                path.unlink()
            except OSError as exc:
                raise os_error(exc, f"removing {path}") from None
        ctx.event("token.backup_neutralised", file=str(path), action=action)
        out.append({"file": path.name, "action": action})
    return out
