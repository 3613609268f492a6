"""The runner's API under its former name (``from moltir.engine.runner import RunResult``): it lives
in :mod:`moltir.engine.cases`, :mod:`~moltir.engine.plan`, :mod:`~moltir.engine.execution`,
:mod:`~moltir.engine.effects` and :mod:`~moltir.engine.results` (re-exported here and by
``moltir.engine``)."""

from moltir.engine.cases import *  # noqa: F403
from moltir.engine.effects import *  # noqa: F403
from moltir.engine.execution import *  # noqa: F403
from moltir.engine.plan import *  # noqa: F403
from moltir.engine.results import *  # noqa: F403
from moltir.engine.steps import *  # noqa: F403
