"""Actions used by moltir's own tests (enabled by MOLTIR_ENABLE_TEST_ACTIONS=1 only)."""

from __future__ import annotations

import time
from pathlib import Path

from moltir.actions.base import Action, Change, Deferred, Param, Plan, StepContext, StepResult
from moltir.errors import usage_error, verify_error


class Sleep(Action):
    name = "test.sleep"
    description = "Sleep, then write a marker file (lets tests kill a run mid-step)."
    params = {
        "seconds": Param((int, float), default=0.0),
        "marker": Param((str,), default=""),
        "until": Param((str,), default="", help="return early once this file exists"),
        "waiting": Param((bool,), default=False, help="call ctx.waiting() first (the engine warms later steps)"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        marker = str(ctx.params["marker"])
        done = bool(marker) and Path(marker).exists()
        return Plan(f"sleep {ctx.params['seconds']} s", (Change("file", marker or "-", after="exists"),),
                    already_done=done)

    def apply(self, ctx: StepContext) -> StepResult:
        if ctx.params["waiting"]:
            ctx.waiting()
        deadline = time.monotonic() + float(ctx.params["seconds"])
        until = str(ctx.params["until"])
        while time.monotonic() < deadline and not (until and Path(until).exists()):
            time.sleep(0.05)
        marker = str(ctx.params["marker"])
        if marker:
            with Path(marker).open("a", encoding="utf-8") as fh:
                fh.write(ctx.step_id + "\n")
        if until and Path(until).exists():
            return StepResult("done", f"{until} appeared")
        return StepResult("done", f"slept {ctx.params['seconds']} s")

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        marker = str(ctx.params["marker"])
        if marker and not Path(marker).exists():
            raise verify_error(f"marker {marker} missing")


class Touch(Action):
    name = "test.touch"
    description = "Create a file (a side effect the dry-run test can look for)."
    params = {"path": Param((str,), default="")}

    def plan(self, ctx: StepContext) -> Plan:
        return Plan(f"create {ctx.params['path']}", (Change("file", str(ctx.params["path"]), after="exists"),))

    def apply(self, ctx: StepContext) -> StepResult:
        if not ctx.params["path"]:
            raise usage_error("test.touch needs a path", "set with: { path: ... }")
        Path(str(ctx.params["path"])).write_text("touched\n", encoding="utf-8")
        return StepResult("done", "touched")

    def warm(self, ctx: StepContext) -> None:
        """Test-only (a real warm writes nothing): leaves ``<path>.warmed`` to show it ran, and when."""
        if ctx.params["path"]:
            Path(str(ctx.params["path"]) + ".warmed").write_text(str(ctx.options.dry_run), encoding="utf-8")

    def still_holds(self, ctx: StepContext) -> str | None:
        path = Path(str(ctx.params["path"]))
        return None if path.exists() else f"{path} is gone"


class Watch(Action):
    name = "test.watch"
    description = "Verify in the background for `seconds`; fail if `fail_if` exists by then."
    params = {"seconds": Param((int, float), default=1.0), "fail_if": Param((str,), default="")}

    def plan(self, ctx: StepContext) -> Plan:
        return Plan("watch")

    def apply(self, ctx: StepContext) -> StepResult:
        return StepResult("done", "applied")

    def verify(self, ctx: StepContext, result: StepResult) -> Deferred:
        seconds, fail_if = float(ctx.params["seconds"]), str(ctx.params["fail_if"])

        def check() -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                time.sleep(0.05)
            if fail_if and Path(fail_if).exists():
                raise verify_error(f"{fail_if} appeared while watching")

        return Deferred(check, f"{fail_if or 'nothing'} stays absent")
