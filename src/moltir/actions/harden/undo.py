"""``harden.undo``: put back what the harden case recorded, exactly: each config file's pre-image bytes
(when the file is still what moltir wrote; a file edited since is a conflict, left and reported
unless ``--force``), the exec approvals document (file bytes and mode, or the state store's row; none
when there was none; same conflict rule) and each file's old mode. The file's owner and mode are kept
on the rewrite, and the modes go back after it."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from moltir.actions.base import Action, Change, Plan, StepContext, StepResult
from moltir.actions.harden import approvals
from moltir.actions.harden.config_step import SECTION
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error
from moltir.fsutil import atomic_write


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class _Undo:
    """What the undo would do, computed from the case and the files as they are now."""

    def __init__(self, ctx: StepContext) -> None:
        section: dict[str, Any] = dict(ctx.case.restore_section(SECTION) or {})
        self.files: list[tuple[Path, bytes]] = []  # (file, bytes to write back)
        self.already: list[str] = []
        self.conflicts: list[str] = []
        for name, info in dict(section.get("files") or {}).items():
            path, now = Path(name), _sha(Path(name))
            if now == info.get("preimage_sha256"):
                self.already.append(name)
                continue
            raw = (ctx.case.dir / str(info.get("preimage"))).read_bytes()
            if hashlib.sha256(raw).hexdigest() != info.get("preimage_sha256"):
                raise MoltirError(f"the saved pre-image of {name} in the case does not match its recorded hash",
                                  hint="the case was altered: put the file back by hand", exit_code=EXIT_STEP_FAILED)
            if now != info.get("written_sha256") and not ctx.options.force:
                self.conflicts.append(f"{name} was edited after 'moltir harden': left as it is "
                                      "(--force puts the pre-harden bytes back anyway)")
                continue
            self.files.append((path, raw))
        self.modes: list[tuple[Path, int, int]] = []  # (path, now, old)
        for name, old_text in dict(section.get("modes") or {}).items():
            path = Path(name)
            try:
                now_mode = stat.S_IMODE(path.lstat().st_mode)
            except OSError:
                continue
            old = int(str(old_text), 8)
            if now_mode != old:
                self.modes.append((path, now_mode, old))
        self.approvals: dict[str, Any] | None = None  # the exec approvals entry to put back
        entry = section.get("approvals")
        if isinstance(entry, dict):
            state = approvals.undo_state(entry, ctx.options.force)
            if state == "todo":
                self.approvals = entry
            elif state == "conflict":
                self.conflicts.append(f"the exec approvals in {entry.get('path')} were changed after 'moltir harden': "
                                      "left as they are (--force puts the pre-harden approvals back anyway)")

    def targets(self) -> list[str]:
        """What is still to put back (files, the approvals' place, paths to chmod)."""
        return [*(str(p) for p, _r in self.files), *([str(self.approvals["path"])] if self.approvals else []),
                *(str(p) for p, _n, _o in self.modes)]

    def summary(self) -> str:
        extra = " and the exec approvals" if self.approvals else ""
        return f"put back {len(self.files)} config file(s){extra} and {len(self.modes)} mode(s)"


class HardenUndo(Action):
    name = "harden.undo"
    description = "Put back the config bytes and file modes a 'moltir harden' case recorded."

    def plan(self, ctx: StepContext) -> Plan:
        u = _Undo(ctx)
        changes = (*(Change("file", str(p), "hardened", "pre-harden bytes") for p, _raw in u.files),
                   *([Change("config", str(u.approvals["path"]) + " (exec approvals)", "hardened",
                             "pre-harden approvals")] if u.approvals else []),
                   *(Change("file", str(p), f"{now:04o}", f"{old:04o}") for p, now, old in u.modes))
        todo = len(u.targets())
        return Plan(u.summary() if todo
                    else "nothing to undo: the files are as before 'moltir harden'", changes,
                    already_done=not todo, warnings=tuple(u.conflicts))

    def apply(self, ctx: StepContext) -> StepResult:
        u = _Undo(ctx)
        details = {"files": [str(p) for p, _r in u.files], "modes": [str(p) for p, _n, _o in u.modes],
                   "approvals": str(u.approvals["path"]) if u.approvals else None, "conflicts": u.conflicts}
        if not u.targets():
            return StepResult("already" if not u.conflicts else "skipped",
                              "nothing to undo: the files are as before 'moltir harden'", details, tuple(u.conflicts))
        ctx.event("harden.undo", files=details["files"], modes=details["modes"], approvals=details["approvals"],
                  conflicts=len(u.conflicts))
        if u.approvals:
            approvals.undo_apply(ctx, u.approvals)
        for path, raw in u.files:
            st = path.stat()
            atomic_write(path, raw, mode=stat.S_IMODE(st.st_mode), owner=(st.st_uid, st.st_gid))
        for path, _now, old in u.modes:
            os.chmod(path, old, follow_symlinks=False)
        return StepResult("done", u.summary(), details, tuple(u.conflicts))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        u = _Undo(ctx)
        left = u.targets()
        if left:
            raise verify_error(f"not back as before 'moltir harden': {', '.join(left[:5])}",
                               "someone changed them meanwhile; run 'moltir harden --undo' again")
