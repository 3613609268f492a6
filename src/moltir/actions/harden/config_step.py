"""``harden.config``: one hardening setting written into the config (comments and layout kept), the
file's pre-image saved in the case and recorded (restore.json section ``harden``) BEFORE the write,
so ``moltir harden --undo`` puts the bytes back exactly."""

from __future__ import annotations

from typing import Any, Final

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.harden import settings
from moltir.errors import EXIT_ENV, MoltirError, verify_error
from moltir.openclaw.configfile import MISSING, ConfigFile, FileEdit, get_path, sha256
from moltir.openclaw.json5edit import DELETE, KeyPath, same_value

SECTION: Final = "harden"


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


def _show(value: object) -> str:
    if value is MISSING:
        return "(absent)"
    if value is DELETE:
        return "(removed)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def record_files(ctx: StepContext, cfg: ConfigFile, file_edits: list[FileEdit], setting: str,
                 paths: list[str]) -> None:
    """Section ``harden``: per file the pre-image (the FIRST one: the file before any harden step) and
    the hash of what moltir wrote last; per setting the paths it changed."""
    section: dict[str, Any] = dict(ctx.case.restore_section(SECTION) or {})
    files: dict[str, Any] = dict(section.get("files") or {})
    for fe in file_edits:
        entry = dict(files.get(str(fe.path)) or {"preimage": cfg.preimage_name(fe.path),
                                                  "preimage_sha256": fe.before_sha256})
        entry["written_sha256"] = sha256(fe.after.encode("utf-8"))
        files[str(fe.path)] = entry
    section["files"] = files
    section["settings"] = {**dict(section.get("settings") or {}), setting: paths}
    ctx.case.update_restore(SECTION, section)


class HardenConfig(Action):
    name = "harden.config"
    description = "Write one hardening setting into the config (recorded for 'moltir harden --undo')."
    params = {
        "setting": Param((str,), default="dm", choices=settings.SETTINGS, help="which setting"),
        "deny": Param((list,), default=list(settings.DEFAULT_DENY),
                      help="tools: the tool names to deny (--deny-tool replaces them)"),
    }

    def _compute(self, ctx: StepContext) -> tuple[ConfigFile, settings.Edits]:
        cfg = ConfigFile.load(ctx.install)
        deny = ctx.options.deny_tools or tuple(str(t) for t in ctx.params.get("deny") or ())
        edits = settings.compute(str(ctx.params["setting"]), cfg, ctx.install.caps,
                                 allow_from=ctx.options.allow_from, deny=deny, force=ctx.options.force,
                                 state_dir=ctx.install.state_dir, env=ctx.install.env)
        edits.paths = {p: v for p, v in edits.paths.items()
                       if not (v is not DELETE and same_value(get_path(cfg.data, p), v))}
        return cfg, edits

    def plan(self, ctx: StepContext) -> Plan:
        cfg, edits = self._compute(ctx)
        setting = ctx.params["setting"]
        if edits.refusal:
            return Plan(f"{setting}: {edits.refused_as}", warnings=(edits.refusal,), already_done=True)
        file_edits = cfg.plan_edits(edits.paths) if edits.paths else []
        changes = tuple(Change("config", _dotted(p), _show(get_path(cfg.data, p)), _show(v))
                        for p, v in edits.paths.items())
        reason = cfg.readonly_reason()
        warnings = [*edits.notes]
        if reason and edits.paths:
            warnings.append(f"the config is read-only ({reason}): the step will refuse to write (exit 3)")
        summary = (f"{setting}: already hardened" if not edits.paths
                   else f"{setting}: change {len(edits.paths)} key(s) in {len(file_edits)} file(s)")
        return Plan(summary, changes, diff="".join(fe.diff for fe in file_edits), already_done=not edits.paths,
                    warnings=tuple(warnings), fails=EXIT_ENV if reason and edits.paths else 0)

    def apply(self, ctx: StepContext) -> StepResult:
        cfg, edits = self._compute(ctx)
        setting = str(ctx.params["setting"])
        if edits.refusal:
            return StepResult("skipped", f"{setting}: not changed: {edits.refusal}", {"refused": edits.refusal},
                              (edits.refusal,))
        if not edits.paths:
            return StepResult("already", f"{setting}: already hardened", {"changed": []}, tuple(edits.notes))
        file_edits = cfg.plan_edits(edits.paths)
        changed = [_dotted(p) for p in edits.paths]
        record_files(ctx, cfg, file_edits, setting, changed)
        ctx.event("harden.write", setting=setting, files=[str(fe.path) for fe in file_edits], changed=changed)
        written = cfg.write(file_edits, case=ctx.case)
        details = {"setting": setting, "changed": changed,
                   "files": [{"path": str(w.path), "before_sha256": w.before_sha256,
                              "after_sha256": w.after_sha256} for w in written]}
        note = cfg.validation_warning()
        return StepResult("done", f"{setting}: changed {', '.join(changed)}", details,
                          (*edits.notes, *([note] if note else [])))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        if result.status == "skipped":
            return
        try:
            edits = self._compute(ctx)[1]
        except MoltirError as exc:
            raise verify_error(f"after harden.config the config no longer loads: {exc.one_line()}") from None
        if edits.paths:
            raise verify_error(f"{ctx.params['setting']}: not in effect at "
                               + ", ".join(_dotted(p) for p in list(edits.paths)[:5]),
                               "someone (or OpenClaw) rewrote the config meanwhile; run 'moltir harden' again")
