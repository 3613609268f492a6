"""``harden.permissions``: the state dir 0700, the config (and its includes) and the credential files
0600, owner kept (``chmod`` only); the old modes recorded (restore.json section ``harden``,
``modes``) BEFORE any change, for ``moltir harden --undo``.

What the audit checks (2026.9.6 ``docs/gateway/security/audit-checks.md``; 2026.1.29
``security audit``): ``fs.state_dir.perms_*``, ``fs.config.perms_*``, ``fs.config_include.perms_*``,
``fs.credentials_dir.perms_*`` (``<state>/credentials``) and ``fs.auth_profiles.perms_*``
(``<state>/agents/<id>/agent/auth-profiles.json``). Symlinks are never followed or changed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Final

from moltir.actions.base import Action, Change, Plan, StepContext, StepResult
from moltir.actions.harden.config_step import SECTION
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error
from moltir.openclaw.configfile import ConfigFile

DIR_MODE: Final = 0o700
FILE_MODE: Final = 0o600


def config_files(install: Any) -> list[Path]:
    """The config and the files it ``$include``s (just the config when it does not load: the config
    steps report why)."""
    try:
        return [Path(p) for p in ConfigFile.load(install).files]
    except MoltirError:
        return [Path(install.config_path)]


def targets(install: Any) -> list[tuple[Path, int]]:
    """(path, wanted mode) of every existing file or folder this step tightens."""
    state = Path(install.state_dir)
    out: list[tuple[Path, int]] = [(state, DIR_MODE)]
    out.extend((p, FILE_MODE) for p in config_files(install))
    creds = state / "credentials"
    if creds.is_dir() and not creds.is_symlink():
        out.append((creds, DIR_MODE))
        out.extend((p, FILE_MODE) for p in sorted(creds.rglob("*")) if p.is_file() and not p.is_symlink())
    out.extend((p, FILE_MODE) for p in sorted(state.glob("agents/*/agent/auth-profiles.json")))
    return [(p, m) for p, m in out if p.exists() and not p.is_symlink()]


def pending(install: Any) -> list[tuple[Path, int, int]]:
    """(path, current mode, new mode) where group or others have any access today."""
    found = []
    for path, wanted in targets(install):
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append((path, mode, wanted))
    return found


class HardenPermissions(Action):
    name = "harden.permissions"
    description = "State dir 0700, config and credential files 0600 (owner kept); old modes recorded."

    def plan(self, ctx: StepContext) -> Plan:
        todo = pending(ctx.install)
        changes = tuple(Change("file", str(p), f"{old:04o}", f"{new:04o}") for p, old, new in todo)
        return Plan(f"permissions: tighten {len(todo)} file(s)/folder(s)" if todo else "permissions: already private",
                    changes, already_done=not todo)

    def apply(self, ctx: StepContext) -> StepResult:
        todo = pending(ctx.install)
        if not todo:
            return StepResult("already", "permissions: already private", {"changed": []})
        section: dict[str, Any] = dict(ctx.case.restore_section(SECTION) or {})
        modes = dict(section.get("modes") or {})
        for path, old, _new in todo:
            modes.setdefault(str(path), f"{old:04o}")  # the first run's mode is the one to put back
        section["modes"] = modes
        ctx.case.update_restore(SECTION, section)
        ctx.event("harden.chmod", paths=[str(p) for p, _o, _n in todo])
        for path, _old, new in todo:
            try:
                os.chmod(path, new, follow_symlinks=False)
            except OSError as exc:
                raise MoltirError(f"cannot change the mode of {path}: {exc.strerror}",
                                  hint="run moltir as the install's owner (or with sudo for a system unit)",
                                  exit_code=EXIT_STEP_FAILED) from None
        changed = [{"path": str(p), "from": f"{o:04o}", "to": f"{n:04o}"} for p, o, n in todo]
        return StepResult("done", f"permissions: tightened {len(todo)} file(s)/folder(s)", {"changed": changed})

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        left = pending(ctx.install)
        if left:
            raise verify_error(f"still readable by others: {', '.join(str(p) for p, _o, _n in left[:5])}",
                               "check the owner of these files, then run 'moltir harden' again")
