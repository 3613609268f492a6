"""The engine layer: runbooks (load, validate), the run's cases (:mod:`~moltir.engine.cases`: status,
lookup, open), planning and preflight (:mod:`~moltir.engine.plan`), execution
(:mod:`~moltir.engine.execution`, one step at a time in :mod:`~moltir.engine.steps`), whether done
steps still hold (:mod:`~moltir.engine.effects`) and what a run returns
(:mod:`~moltir.engine.results`); the hash-chained journal, case folders and the per-install run
lock. ``from moltir import engine`` gives the run API of all of them (and ``moltir.engine.runner``,
the former single module, still re-exports it)."""

from moltir.engine import runner  # noqa: F401
from moltir.engine.cases import *  # noqa: F403
from moltir.engine.effects import *  # noqa: F403
from moltir.engine.execution import *  # noqa: F403
from moltir.engine.plan import *  # noqa: F403
from moltir.engine.results import *  # noqa: F403
from moltir.engine.steps import *  # noqa: F403
