"""Console output for people, through structlog, with secrets redacted on the way out.

Configured inside each CLI invocation (never at import) so that tests capturing stderr see it.
Every event passes :func:`moltir.redaction.redact_value` before it is rendered.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from moltir.redaction import redact_value
from moltir.text import shown

_ICONS = {"done": "✓", "already": "✓", "forced": "!", "skipped": "-", "failed": "✗", "not-run": "·"}


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    return {k: redact_value(k, v) for k, v in event_dict.items()}


class _FriendlyRenderer:
    """One readable line per event: what a scared operator needs, nothing more."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def _c(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def __call__(self, _: Any, __: str, ev: MutableMapping[str, Any]) -> str:
        label = ev.pop("install_label", None)  # --all-profiles: which install a line is about
        for key, value in list(ev.items()):  # text from configs, runbooks, reasons: never raw control chars
            if isinstance(value, str):
                ev[key] = shown(value, 2000)
            elif isinstance(value, list):
                ev[key] = [shown(v, 2000) if isinstance(v, str) else v for v in value]
        line = self._line(ev)
        if label:
            return "\n".join(f"[{label}] {part}" for part in line.splitlines())
        return line

    def _line(self, ev: MutableMapping[str, Any]) -> str:
        event = str(ev.pop("event", ""))
        ev.pop("level", None)
        if event == "step.start":
            return f"→ {ev.get('step')} ({ev.get('action')}) ..."
        if event == "step.done":
            status = str(ev.get("status", "done"))
            icon = _ICONS.get(status, "✓")
            secs = float(ev.get("duration_ms", 0)) / 1000
            mark = self._c(icon, "32" if status != "forced" else "33")
            line = f"{mark} {ev.get('step')}: {ev.get('summary')} ({secs:.1f} s)"
            for w in ev.get("warnings") or []:
                line += "\n  " + self._c(f"warning: {w}", "33")
            return line
        if event == "step.regressed":
            return self._c(f"! {ev.get('step')} was done in this case, but {ev.get('reason')}: running it again",
                           "33")
        if event == "step.skip":
            return f"{self._c('✓', '32')} {ev.get('step')}: {ev.get('reason')}"
        if event == "step.failed":
            return f"{self._c('✗', '31')} {ev.get('step')}: {ev.get('error')}"
        if event == "run.start":
            resumed = ev.get("resumed_from")
            tail = f", resuming at step '{resumed}'" if resumed else ""
            return f"moltir {ev.get('runbook')}: case {ev.get('case_id')}{tail}"
        rest = " ".join(f"{k}={v}" for k, v in ev.items())
        return f"{event} {rest}".rstrip()


def configure(*, verbose: bool = False, quiet: bool = False) -> None:
    color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    level = 10 if verbose else (40 if quiet else 20)
    structlog.configure(
        processors=[structlog.processors.add_log_level, _redact, _FriendlyRenderer(color)],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


# Events whose text is the run's result: the CLI prints it once, on stdout (cli.render.render_run).
RESULT_EVENTS = frozenset({"run.done", "run.interrupted"})


def emit(event: str, fields: Mapping[str, Any]) -> None:
    """The engine's progress callback: progress lines go to stderr.

    Decision (the usual CLI convention): stderr carries progress, warnings and errors; stdout carries
    the result. The run's final message ("contain: all 6 steps done (case ...)", a failed or
    interrupted run's message) is the result, so it is printed once, on stdout, by the CLI, and not
    here as well; with ``--json`` stdout is the one JSON object and holds it as ``message``. The
    journal still records ``run.done`` / ``run.interrupted``.
    """
    if event in RESULT_EVENTS:
        return
    structlog.get_logger().info(event, **dict(fields))
