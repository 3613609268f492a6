"""``pause.config`` and ``pause.restore``: what ``moltir contain --level pause`` changes beyond the DM
policies (the bot stays visible but harmless), and its undo.

``pause.config`` writes, keeping the config's comments and layout, and recording every old value in
restore.json section ``pause`` BEFORE the write (the same record ``dm_policy.set`` keeps):

* ``tools.deny`` gains ``exec`` and ``process`` (the tool policy: "deny wins", applied even with the
  sandbox off; existing entries kept, order kept) -- the model is not even offered the tools;
* ``tools.elevated.enabled: false`` (no host exec that bypasses the sandbox);
* ``cron.enabled: false`` (stored jobs kept, none runs).

The keys are the same in every release moltir knows, so no capability question is needed: checked
in the packages' docs, 2026.1.29 ``docs/gateway/configuration.md`` (``tools.elevated``, ``cron:
{ enabled }``, ``tools.deny``) and 2026.9.6 ``docs/gateway/config-tools/tool-policy.md``
(``tools.allow`` / ``tools.deny``, ``tools.elevated``) and ``docs/gateway/config-automation.md``
("Set ``false`` to pause all automation execution without deleting jobs"); the integration test runs
``openclaw config validate`` on the paused config of both.

``pause.restore`` (in ``restore.json5``, a no-op for a case that was not paused) puts back exactly the
recorded paths (:class:`moltir.actions.dm_policy.restore.RestoreDmPolicy` with section ``pause``) and,
because a paused gateway keeps running, restarts it the way it runs so the restored config (this
step's and the DM policies the step before put back) is the one it serves. Decision: restart rather
than trust the gateway's config hot reload, which differs per release and setting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.dm_policy.restore import RestoreDmPolicy
from moltir.actions.dm_policy.set import record_paths
from moltir.errors import EXIT_ENV, MoltirError, verify_error
from moltir.openclaw.configfile import MISSING, ConfigFile, get_path
from moltir.openclaw.json5edit import KeyPath

SECTION: Final = "pause"
DEFAULT_DENY: Final = ("exec", "process")
DENY_PATH: Final[KeyPath] = ("tools", "deny")
ELEVATED_PATH: Final[KeyPath] = ("tools", "elevated", "enabled")
CRON_PATH: Final[KeyPath] = ("cron", "enabled")


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


def _show(value: object) -> str:
    return "(absent)" if value is MISSING else str(value).lower() if isinstance(value, bool) else str(value)


def pause_edits(data: Mapping[str, Any], deny: tuple[str, ...] = DEFAULT_DENY) -> dict[KeyPath, object]:
    """The paths to write so the config is paused; empty when it already is. Pure."""
    edits: dict[KeyPath, object] = {}
    current = get_path(data, DENY_PATH)
    listed = list(current) if isinstance(current, list) else []
    have = {str(x).lower() for x in listed if isinstance(x, str)}
    missing = [t for t in deny if t.lower() not in have]
    if missing:
        edits[DENY_PATH] = [*listed, *missing]
    if get_path(data, ELEVATED_PATH) is not False:
        edits[ELEVATED_PATH] = False
    if get_path(data, CRON_PATH) is not False:
        edits[CRON_PATH] = False
    return edits


class PauseConfig(Action):
    name = "pause.config"
    description = ("Deny the exec and process tools, turn elevated tools and cron jobs off (recorded for "
                   "'moltir restore').")
    params = {"deny": Param((list,), default=list(DEFAULT_DENY), help="the tool names to add to tools.deny")}

    def _compute(self, ctx: StepContext) -> tuple[ConfigFile, dict[KeyPath, object]]:
        cfg = ConfigFile.load(ctx.install)
        return cfg, pause_edits(cfg.data, tuple(str(t) for t in ctx.params.get("deny") or ()))

    def plan(self, ctx: StepContext) -> Plan:
        cfg, edits = self._compute(ctx)
        file_edits = cfg.plan_edits(edits) if edits else []
        changes = tuple(Change("config", _dotted(p), _show(get_path(cfg.data, p)), _show(v)) for p, v in edits.items())
        reason = cfg.readonly_reason()
        warnings = ((f"the config is read-only ({reason}): the step will refuse to write (exit 3)",)
                    if reason and edits else ())
        summary = (f"pause: change {len(edits)} key(s) in {len(file_edits)} file(s)" if edits
                   else "exec and process denied, elevated tools and cron already off")
        return Plan(summary, changes, diff="".join(fe.diff for fe in file_edits), already_done=not edits,
                    warnings=warnings, fails=EXIT_ENV if reason and edits else 0)

    def still_holds(self, ctx: StepContext) -> str | None:
        try:
            edits = self._compute(ctx)[1]
        except MoltirError as exc:
            return exc.one_line()
        return f"no longer paused at {', '.join(_dotted(p) for p in edits)}" if edits else None

    def apply(self, ctx: StepContext) -> StepResult:
        cfg, edits = self._compute(ctx)
        if not edits:
            return StepResult("already", "exec and process denied, elevated tools and cron already off",
                              {"changed": []})
        file_edits = cfg.plan_edits(edits)
        changed = [_dotted(p) for p in edits]
        record_paths(ctx, SECTION, cfg, edits, file_edits, {})
        ctx.event("pause.write", files=[str(fe.path) for fe in file_edits], changed=changed)
        written = cfg.write(file_edits, case=ctx.case)
        details = {"changed": changed, "files": [{"path": str(w.path), "before_sha256": w.before_sha256,
                                                  "after_sha256": w.after_sha256} for w in written]}
        note = cfg.validation_warning()
        return StepResult("done", f"paused: {', '.join(changed)}", details, (note,) if note else ())

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        try:
            edits = self._compute(ctx)[1]
        except MoltirError as exc:
            raise verify_error(f"after pause.config the config no longer loads: {exc.one_line()}") from None
        if edits:
            raise verify_error(f"not paused at {', '.join(_dotted(p) for p in edits)}",
                               "someone (or OpenClaw) rewrote the config meanwhile; run the step again")


class PauseRestore(RestoreDmPolicy):
    name = "pause.restore"
    description = ("Put back the tool, elevated and cron settings pause.config recorded in this case, exactly, "
                   "then restart the running gateway so it serves the restored config (no-op without a pause).")
    params: ClassVar[Mapping[str, Param]] = {
        "timeout_s": Param((int, float), default=180, help="seconds to wait for the restarted gateway"),
    }
    section = SECTION
    noun = "paused"
    what = "the paused settings (tools.deny, tools.elevated, cron)"
    setter = "pause.config"

    def plan(self, ctx: StepContext) -> Plan:
        from moltir.actions.gateway import find_gateways

        plan = super().plan(ctx)
        if ctx.case.restore_section(SECTION) is None or not find_gateways(ctx.install):
            return plan
        restart = Change("process", "gateway", "running (paused config)", "restarted on the restored config")
        return Plan(plan.summary + "; restart the running gateway", (*plan.changes, restart), diff=plan.diff,
                    warnings=plan.warnings, fails=plan.fails)

    def apply(self, ctx: StepContext) -> StepResult:
        from moltir.actions.gateway import find_gateways, health_token, restart_running
        from moltir.actions.gateway.common import step_timeout

        result = super().apply(ctx)
        if ctx.case.restore_section(SECTION) is None or not find_gateways(ctx.install):
            return result
        token, _source = health_token(ctx)
        how = restart_running(ctx, token, step_timeout(ctx, 180.0))
        status = "done" if result.status in ("already", "skipped") else result.status
        return StepResult(status, f"{result.summary}; gateway restarted ({how})",
                          {**result.details, "restarted": how}, result.warnings)
