"""``dm_policy.set``: write the scan's values, recording the old ones (restore.json section
``dm_policy``) before the config is touched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.dm_policy.scan import Scan, _dotted, scan
from moltir.actions.dm_policy.tables import table_for
from moltir.errors import EXIT_ENV, MoltirError, verify_error
from moltir.openclaw.configfile import MISSING, ConfigFile, FileEdit, get_path, sha256
from moltir.openclaw.json5edit import KeyPath, same_value

SECTION: Final = "dm_policy"
ABSENT: Final = "absent"


def _describe(value: Any) -> str:
    return "(absent)" if value is MISSING else repr(value) if not isinstance(value, str) else value


def _diff(file_edits: list[FileEdit]) -> str:
    return "".join(fe.diff for fe in file_edits)


def _created_value(paths: list[tuple[KeyPath, object]], prefix: KeyPath) -> Any:
    """What moltir's insert puts at ``prefix`` for the paths below it."""
    if len(paths) == 1 and paths[0][0] == prefix:
        return paths[0][1]
    root: dict[str, Any] = {}
    for path, value in paths:
        target = root
        for key in path[len(prefix):-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return root


def _owner_note(cfg: ConfigFile, path: KeyPath) -> str:
    """Where the key lives, when that is not the main config file (an ``$include``)."""
    owner = cfg.owner_of(path)[0]
    return "" if owner == cfg.path else f"in {owner}"


WARM_CONFIG = "warm.config"  # ctx.shared key (warmers only): the ConfigFile as the earlier steps will leave it


def _load(ctx: StepContext) -> ConfigFile:
    return ConfigFile.load(ctx.install)


class SetDmPolicy(Action):
    name = "dm_policy.set"
    description = ("Turn DMs off on every channel and account (per-chat overrides too), keeping the "
                   "config's comments and layout; records the old values for dm_policy.restore.")
    params = {
        "policy": Param((str,), default="disabled", choices=("disabled", "allowlist", "pairing"),
                        help="the DM policy to write everywhere"),
        "no_dm_key": Param((str,), default="report", choices=("report", "disable-channel"),
                           help="channels without a DM policy key: report them, or set enabled: false"),
        "groups": Param((str,), default=None, choices=(None, "disabled", "allowlist"),
                        help="also set groupPolicy (and per-group overrides) to this value"),
    }

    def _compute(self, ctx: StepContext) -> tuple[ConfigFile, Scan, dict[KeyPath, object]]:
        cfg = _load(ctx)
        table = table_for(ctx.install.caps)
        result = scan(cfg, table, str(ctx.params["policy"]), str(ctx.params["no_dm_key"]),
                      ctx.params.get("groups"))
        edits: dict[KeyPath, object] = {}
        for t in result.targets:
            current = get_path(cfg.data, t.path)
            if current is MISSING or not same_value(current, t.value):
                edits[t.path] = t.value
        return cfg, result, edits

    def plan(self, ctx: StepContext) -> Plan:
        cfg, result, edits = self._compute(ctx)
        file_edits = cfg.plan_edits(edits) if edits else []
        changes = tuple(Change("config", _dotted(p), _describe(get_path(cfg.data, p)), str(v).lower()
                               if isinstance(v, bool) else str(v), detail=_owner_note(cfg, p))
                        for p, v in edits.items())
        warnings = list(result.reports)
        reason = cfg.readonly_reason()
        if reason and edits:
            warnings.append(f"the config is read-only ({reason}): the step will refuse to write (exit 3)")
        policy = ctx.params["policy"]
        if not edits:
            summary = f"DM policy already {policy!r} on all {len(result.targets)} paths"
        else:
            summary = (f"set {len(edits)} of {len(result.targets)} DM/group paths to {policy!r} "
                       f"in {len(file_edits)} file(s)")
        return Plan(summary, changes, diff=_diff(file_edits), already_done=not edits, warnings=tuple(warnings),
                    fails=EXIT_ENV if reason and edits else 0)

    def warm(self, ctx: StepContext) -> None:
        """Parse the config and plan the edits now (both reference parses land in the cache), and leave
        the config as it will be after them for the next warmers (token.rotate edits that text)."""
        cfg, _result, edits = self._compute(ctx)
        planned = cfg.plan_edits(edits) if edits else []
        cfg.start_validation(planned)
        ctx.shared[WARM_CONFIG] = cfg.with_planned(planned) if planned else cfg

    def still_holds(self, ctx: StepContext) -> str | None:
        try:
            edits = self._compute(ctx)[2]
        except MoltirError as exc:
            return exc.one_line()
        if not edits:
            return None
        paths = ", ".join(_dotted(p) for p in list(edits)[:3])
        paths += f" (+{len(edits) - 3} more)" if len(edits) > 3 else ""
        return f"{len(edits)} DM/group path(s) are no longer {ctx.params['policy']!r}: {paths}"

    def apply(self, ctx: StepContext) -> StepResult:
        cfg, result, edits = self._compute(ctx)
        details: dict[str, Any] = {"paths": [_dotted(t.path) for t in result.targets], "reported": result.reports,
                                   "notes": result.notes, "config": str(cfg.path)}
        if not edits:
            summary = (f"DM policy already {ctx.params['policy']!r} everywhere ({len(result.targets)} paths)"
                       if result.targets or result.reports else "no channels configured: nothing to turn off")
            return StepResult("already", summary, details, tuple(result.reports))
        file_edits = cfg.plan_edits(edits)
        self._record(ctx, cfg, edits, file_edits)
        ctx.event("dm_policy.write", files=[str(fe.path) for fe in file_edits],
                  changed=[_dotted(p) for p in edits])
        written = cfg.write(file_edits, case=ctx.case)
        details["changed"] = [_dotted(p) for p in edits]
        details["files"] = [{"path": str(w.path), "before_sha256": w.before_sha256,
                             "after_sha256": w.after_sha256, "preimage": w.preimage} for w in written]
        details["validated"] = cfg.validation.describe() if cfg.validation else None
        note = cfg.validation_warning()
        return StepResult("done", f"set {len(edits)} DM/group paths to {ctx.params['policy']!r} "
                                  f"in {len(written)} file(s)", details,
                          (*result.reports, *([note] if note else [])))

    def _record(self, ctx: StepContext, cfg: ConfigFile, edits: Mapping[KeyPath, object],
                file_edits: list[FileEdit]) -> None:
        """restore.json section ``dm_policy``: written BEFORE the config is touched."""
        record_paths(ctx, SECTION, cfg, edits, file_edits, {"policy": ctx.params["policy"]})

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        try:
            edits = self._compute(ctx)[2]
        except MoltirError as exc:
            raise verify_error(f"after dm_policy.set the config no longer loads: {exc.one_line()}") from None
        if edits:
            paths = ", ".join(_dotted(p) for p in list(edits)[:5])
            more = f" (+{len(edits) - 5} more)" if len(edits) > 5 else ""
            raise verify_error(f"DM policy not in effect at {paths}{more}",
                               "someone (or OpenClaw) rewrote the config meanwhile; run the step again")


def record_paths(ctx: StepContext, section: str, cfg: ConfigFile, edits: Mapping[KeyPath, object],
                 file_edits: list[FileEdit], extra: Mapping[str, Any]) -> None:
    """Record in restore.json ``section`` the old value of every path in ``edits`` (and the files'
    pre-images), BEFORE the config is touched; :class:`moltir.actions.dm_policy.restore.RestoreDmPolicy`
    puts them back. A section already there (a resumed or repeated run) keeps its first old values."""
    owners = {p: cfg.owner_of(p) for p in edits}
    entries: list[dict[str, Any]] = []
    created_groups: dict[KeyPath, list[tuple[KeyPath, object]]] = {}
    for p, value in edits.items():
        owner, inner = owners[p]
        entry: dict[str, Any] = {"path": list(p), "file": str(owner), "written": value}
        old = get_path(cfg.data, p)
        if old is MISSING:
            doc = cfg.files[owner].doc
            missing = doc.missing_prefix(inner) or inner
            created = p[:len(p) - len(inner) + len(missing)]
            entry["old"] = ABSENT
            entry["created"] = list(created)
            created_groups.setdefault(created, []).append((p, value))
        else:
            entry["old"] = {"value": old}
        entries.append(entry)
    for entry in entries:
        if "created" in entry:
            created = tuple(entry["created"])
            entry["created_value"] = _created_value(created_groups[created], created)
    files = {fe.path: fe for fe in file_edits}
    record = {
        "config": str(cfg.path),
        **extra,
        "files": {str(path): {"preimage": cfg.preimage_name(path), "preimage_sha256": fe.before_sha256,
                              "written_sha256": sha256(fe.after.encode("utf-8"))}
                  for path, fe in files.items()},
        "paths": entries,
    }
    existing = ctx.case.restore_section(section)
    if existing is None:
        ctx.case.record_restore(section, record)
        return
    # a resumed/repeated run: keep the first old values, add paths seen for the first time
    known = {tuple(e["path"]) for e in existing.get("paths", [])}
    merged = dict(existing)
    merged["paths"] = [*existing.get("paths", []), *(e for e in entries if tuple(e["path"]) not in known)]
    merged_files = dict(existing.get("files", {}))
    for path, info in record["files"].items():
        if path in merged_files:
            merged_files[path] = {**merged_files[path], "written_sha256": info["written_sha256"]}
        else:
            merged_files[path] = info
    merged["files"] = merged_files
    ctx.case.update_restore(section, merged)
