"""The engine layer: runbooks (load, validate), the runner (plan, lock, steps, results), the
hash-chained journal, case folders and the per-install run lock. ``from moltir import engine`` gives
the runner's API (:mod:`moltir.engine.runner`)."""

from moltir.engine.runner import *  # noqa: F403
