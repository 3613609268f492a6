"""``dm_policy.restore``: put back exactly the paths ``dm_policy.set`` recorded; a path changed since
is a conflict (left and reported, or overwritten with ``--force``); a file still byte-for-byte what
moltir wrote gets its saved pre-image back."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult, StepStatus
from moltir.actions.dm_policy.scan import _dotted
from moltir.actions.dm_policy.set import ABSENT, SECTION, _describe, _load
from moltir.errors import EXIT_ENV, MoltirError, verify_error
from moltir.openclaw.configfile import MISSING, ConfigFile, FileEdit, get_path
from moltir.openclaw.json5edit import DELETE, KeyPath, parse, same_value, unified_diff

if TYPE_CHECKING:
    from moltir.engine.case import Case


@dataclass
class _RestorePlan:
    cfg: ConfigFile
    edits: dict[KeyPath, object]
    restored: list[str]
    already: list[str]
    conflicts: list[str]
    overridden: list[str]  # conflicts put back anyway because of --force
    preimage_files: dict[str, bytes]  # file -> pre-image bytes to write back whole

    def remove(self, entry: Mapping[str, Any], deleted_prefixes: set[KeyPath], *, force: bool) -> None:
        """A path moltir inserted: delete it (or the intermediate object moltir created for it)."""
        path: KeyPath = tuple(entry["path"])
        written = entry["written"]
        current = get_path(self.cfg.data, path)
        name = _dotted(path)
        if current is MISSING:
            self.already.append(name)
            return
        if not same_value(current, written) and self._left_as_is(name, current, written, force=force):
            return
        self.restored.append(name)
        created: KeyPath = tuple(entry.get("created") or path)
        if created in deleted_prefixes:
            return
        if created != path and same_value(get_path(self.cfg.data, created), entry.get("created_value")):
            self.edits[created] = DELETE
            deleted_prefixes.add(created)
        else:
            self.edits[path] = DELETE

    def put_back(self, entry: Mapping[str, Any], *, force: bool, reopen_open: str) -> None:
        """A path that held a value before: write that value back (see :func:`restored_value`)."""
        path: KeyPath = tuple(entry["path"])
        written = entry["written"]
        current = get_path(self.cfg.data, path)
        name = _dotted(path)
        old_value = restored_value(path, entry["old"]["value"], reopen_open)
        if current is not MISSING and same_value(current, old_value):
            self.already.append(name)
            return
        changed = current is MISSING or not same_value(current, written)
        if changed and self._left_as_is(name, current, written, force=force):
            return
        self.edits[path] = old_value
        self.restored.append(name)

    def _left_as_is(self, name: str, current: object, written: object, *, force: bool) -> bool:
        """A path changed since moltir wrote it: a conflict left as it is (True), or with --force
        overridden (False: put back anyway)."""
        if not force:
            self.conflicts.append(f"{name} is now {_describe(current)!r}, not {written!r} as moltir left it: "
                                  "left as it is")
            return True
        self.overridden.append(name)
        return False


class RestoreDmPolicy(Action):
    name = "dm_policy.restore"
    description = ("Put back the DM (and group) policies dm_policy.set recorded in this case, exactly; "
                   "a value changed since is left and reported (--force puts the old value back anyway).")
    params: ClassVar[Mapping[str, Param]] = {}
    section: ClassVar[str] = SECTION  # the restore.json section it puts back (pause.restore: "pause")
    noun: ClassVar[str] = "DM/group"  # what its messages call the paths
    what: ClassVar[str] = "DM policies"  # ... and the settings
    setter: ClassVar[str] = "dm_policy.set"  # the action that recorded the section

    def _compute(self, ctx: StepContext) -> _RestorePlan | None:
        record = ctx.case.restore_section(self.section)
        if not record:
            return None
        rp = _RestorePlan(_load(ctx), {}, [], [], [], [], {})
        deleted_prefixes: set[KeyPath] = set()
        for entry in record.get("paths", []):
            if entry["old"] == ABSENT:
                rp.remove(entry, deleted_prefixes, force=ctx.options.force)
            else:
                rp.put_back(entry, force=ctx.options.force, reopen_open=ctx.options.reopen_open)
        rp.preimage_files.update(_intact_preimages(ctx.case, rp.cfg, record))
        return rp

    def _file_edits(self, rp: _RestorePlan) -> list[FileEdit]:
        file_edits = rp.cfg.plan_edits(rp.edits) if rp.edits else []
        out: list[FileEdit] = []
        for fe in file_edits:
            raw = rp.preimage_files.get(str(fe.path))
            if raw is not None and not rp.conflicts:
                # the file is exactly what moltir wrote: its pre-image IS the restored file
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None and _semantically_equal(rp.cfg, fe, text):
                    fe = FileEdit(fe.path, fe.before, text, fe.diff if text == fe.after else
                                  unified_diff(fe.before, text, str(fe.path)), fe.edits, fe.before_sha256)
            out.append(fe)
        return out

    def plan(self, ctx: StepContext) -> Plan:
        rp = self._compute(ctx)
        if rp is None:
            return Plan(f"nothing to restore: {self.setter} changed nothing in this case", already_done=True)
        file_edits = self._file_edits(rp)
        changes = tuple(Change("config", _dotted(p), _describe(get_path(rp.cfg.data, p)),
                               "(removed)" if v is DELETE else str(v)) for p, v in rp.edits.items())
        summary = (f"put back {len(rp.restored)} {self.noun} paths" if rp.edits
                   else f"{self.what} already as before containment")
        warnings = [*rp.conflicts, *(f"{name} was edited during the incident: --force puts the recorded value "
                                     "back over that edit" for name in rp.overridden)]
        reason = rp.cfg.readonly_reason()
        if reason and file_edits:
            warnings.append(f"the config is read-only ({reason}): the step will refuse to write (exit 3)")
        return Plan(summary, changes, diff="".join(fe.diff for fe in file_edits), already_done=not rp.edits,
                    warnings=tuple(warnings), fails=EXIT_ENV if reason and file_edits else 0)

    def apply(self, ctx: StepContext) -> StepResult:
        rp = self._compute(ctx)
        if rp is None:
            return StepResult("skipped", f"nothing to restore: {self.setter} changed nothing in this case")
        details: dict[str, Any] = {"restored": rp.restored, "already": rp.already, "conflicts": rp.conflicts}
        if not rp.edits:
            status: StepStatus = "already" if not rp.conflicts else "skipped"
            return StepResult(status, f"{self.what} already as recorded ({len(rp.already)} paths)"
                              + (f"; {len(rp.conflicts)} conflict(s) left" if rp.conflicts else ""),
                              details, tuple(rp.conflicts))
        file_edits = self._file_edits(rp)
        ctx.event("dm_policy.restore", files=[str(fe.path) for fe in file_edits],
                  paths=[_dotted(p) for p in rp.edits], conflicts=len(rp.conflicts), forced=ctx.options.force)
        written = rp.cfg.write(file_edits, case=ctx.case, refuse_invalid=False)
        details["files"] = [{"path": str(w.path), "before_sha256": w.before_sha256,
                             "after_sha256": w.after_sha256} for w in written]
        details["validated"] = rp.cfg.validation.describe() if rp.cfg.validation else None
        note = rp.cfg.validation_warning()
        summary = f"put back {len(rp.restored)} {self.noun} paths"
        if rp.conflicts:
            summary += (f"; {len(rp.conflicts)} changed during the incident and left as they are "
                        "(--force puts the recorded values back)")
        if rp.overridden:
            details["forced"] = rp.overridden
            summary += (f"; --force overwrote {len(rp.overridden)} edited during the incident: "
                        + ", ".join(rp.overridden))
        final: StepStatus = "forced" if rp.overridden else "done"
        return StepResult(final, summary, details, (*rp.conflicts, *([note] if note else [])))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        record = ctx.case.restore_section(self.section)
        if not record:
            return
        try:
            cfg = _load(ctx)
        except MoltirError as exc:
            raise verify_error(f"after dm_policy.restore the config no longer loads: {exc.one_line()}") from None
        conflicts = {c.split(" ", 1)[0] for c in result.details.get("conflicts", [])}
        wrong: list[str] = []
        for entry in record.get("paths", []):
            path: KeyPath = tuple(entry["path"])
            if _dotted(path) in conflicts:
                continue
            current = get_path(cfg.data, path)
            old = entry["old"]
            if old == ABSENT:
                if current is not MISSING:
                    wrong.append(_dotted(path))
            elif current is MISSING or current != restored_value(path, old["value"], ctx.options.reopen_open):
                wrong.append(_dotted(path))
        if wrong:
            raise verify_error(f"{self.what} not back at {', '.join(wrong[:5])}"
                               + (f" (+{len(wrong) - 5} more)" if len(wrong) > 5 else ""),
                               "someone rewrote the config meanwhile; run 'moltir restore' again")


def is_dm_path(path: KeyPath) -> bool:
    return bool(path) and (path[-1] == "dmPolicy" or tuple(path[-2:]) == ("dm", "policy"))


def restored_value(path: KeyPath, recorded: object, reopen_open: str) -> object:
    """What restore writes back at ``path``: the recorded pre-incident value, except a DM policy that was
    ``open`` (anyone may write to the bot) when ``restore --reopen-open=pairing`` (or allowlist,
    disabled) asks for a safer one."""
    if recorded == "open" and reopen_open != "open" and is_dm_path(path):
        return reopen_open
    return recorded


def _semantically_equal(cfg: ConfigFile, fe: FileEdit, text: str) -> bool:
    """The pre-image parses to the same value as the path-based restore (so using it changes nothing else)."""
    try:
        return same_value(parse(text, source=str(fe.path)).value, parse(fe.after, source=str(fe.path)).value)
    except MoltirError:
        return False


def _intact_preimages(case: Case, cfg: ConfigFile, record: Mapping[str, Any]) -> dict[str, bytes]:
    """file -> its saved pre-image, for the files still exactly what moltir wrote (pre-image intact)."""
    preimages: dict[str, bytes] = {}
    for fname, info in record.get("files", {}).items():
        src = cfg.files.get(Path(fname))
        if src is None or src.identity.sha256 != info.get("written_sha256"):
            continue
        try:
            raw = (case.dir / info["preimage"]).read_bytes()
        except OSError:
            continue
        if hashlib.sha256(raw).hexdigest() == info.get("preimage_sha256"):
            preimages[fname] = raw
    return preimages
