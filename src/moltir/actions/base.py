"""The contract every action implements, and what the engine hands it.

An action kind (``gateway.stop``, ``dm_policy.set``, ...) is a class with:

* ``params``: the ``with:`` keys it accepts (validated when the runbook loads);
* ``plan(ctx)``: what it would change, computed with NO side effects (``--dry-run`` stops here);
* ``apply(ctx)``: does it, idempotently (already done -> status "already"); records what
  ``restore`` needs in the case (``ctx.case.record_restore``) BEFORE changing anything;
* ``verify(ctx, result)``: checks the effect really holds; raises ``MoltirError`` with
  exit code 5 when it does not. When part of the check is "it keeps holding for a while"
  (the gateway stays down for a few seconds), verify checks what it can at once and returns a
  :class:`Deferred` watch: the engine runs it in the background while the next steps run
  (that keeps the contain-critical path fast) and journals the step as verified only when the
  watch has passed.

Actions may raise :class:`moltir.errors.MoltirError`; anything else is treated as a bug.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.engine.journal import Journal
    from moltir.openclaw import Install


@dataclass(frozen=True)
class Param:
    """One accepted ``with:`` key: allowed JSON types, default, allowed values."""

    types: tuple[type, ...]
    default: Any = None
    choices: tuple[Any, ...] | None = None
    help: str = ""


@dataclass(frozen=True)
class Change:
    """One line of a plan: a process to signal, a config key, a keyring entry, a file."""

    kind: Literal["process", "service", "config", "keyring", "file", "command", "note", "container"]
    target: str
    before: str | None = None
    after: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    summary: str
    changes: tuple[Change, ...] = ()
    diff: str = ""  # unified diff of every file that would change
    already_done: bool = False
    simulated: bool = True  # False: "would run (not simulated)" -- the plan could not be computed exactly
    warnings: tuple[str, ...] = ()
    fails: int = 0  # as things stand the step would fail with this exit code (e.g. 3: read-only config)


StepStatus = Literal["done", "already", "skipped", "forced", "failed"]


@dataclass(frozen=True)
class StepResult:
    status: StepStatus
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-safe, never a secret value
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deferred:
    """The rest of a verification, run by the engine in the background (raises MoltirError)."""

    check: Callable[[], None]
    description: str


@dataclass(frozen=True)
class RunOptions:
    """Flags of the whole run that actions may consult."""

    dry_run: bool = False
    force: bool = False
    allow_insecure_keyring: bool = False
    clean_env: bool = False
    revoke_devices: bool = False
    reason: str = ""
    reopen_open: str = "open"  # restore: the value a DM path recorded as "open" goes back to
    allow_from: tuple[str, ...] = ()  # harden: --allow-from (open DMs become an allowlist of these)
    deny_tools: tuple[str, ...] = ()  # harden: --deny-tool (replaces the runbook's deny list)


@dataclass
class StepContext:
    install: Install
    case: Case
    journal: Journal
    params: Mapping[str, Any]  # the step's ``with:`` merged over the action's defaults
    step_id: str
    runbook: str
    timeout_s: float | None
    options: RunOptions
    shared: dict[str, Any]  # in-memory only, shared by the steps of one run (e.g. the new token)
    # this step's scratch: what plan() found that apply(), a moment later in the same step, may reuse
    # instead of looking again (apply still re-checks what it acts on)
    memo: dict[str, Any] = field(default_factory=dict)
    # called by a step when it starts waiting on something outside moltir (gateway.stop: the gateway's
    # drain): the engine then warms the next steps in the background (Action.warm)
    waiting: Callable[[], None] = field(default=lambda: None)

    def event(self, name: str, **fields: Any) -> None:
        """Journal an event of this step (secrets are redacted by the journal)."""
        self.journal.append(name, step=self.step_id, **fields)


class Action(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param]] = {}

    @abstractmethod
    def plan(self, ctx: StepContext) -> Plan: ...

    @abstractmethod
    def apply(self, ctx: StepContext) -> StepResult: ...

    def preflight(self, install: Install, params: Mapping[str, Any], options: RunOptions) -> None:
        """Environment checks that must hold before the RUN changes anything: raise ``MoltirError``
        (exit 3) when one does not. No side effects. The engine runs the preflight of every step still
        to run before the first step, so a run that would stop half-way on an unusable environment (a
        locked keyring at step 3 of contain, after the gateway was stopped) changes nothing instead."""
        return None

    def warm(self, ctx: StepContext) -> None:
        """Work with NO side effect that fills the caches this step will hit (the json5 reference parses
        of the config texts it will read and write), run by the engine in a background thread while an
        earlier step waits (``ctx.waiting()``): the gateway drains for about 0.6 s, and moltir's own
        work after it is the contain-critical path. ``ctx`` is read-only (dry-run options, read-only
        case, no journal); ``ctx.shared`` is shared by the warmers of one run only. Errors are ignored:
        the step itself does the work again, and reports them. Default: nothing."""
        return None

    def prepare(self, ctx: StepContext) -> Callable[[], None] | None:
        """In a real run only, right after :meth:`warm`, in the same background thread: the first part of
        :meth:`apply` that an earlier step's wait can hide, when it writes only what ``apply`` would
        write first and cleans up itself (token.rotate: the new token in a STAGING keyring entry and the
        helper's boot check). Results go to ``ctx.shared`` (the run's own) for ``apply`` to take; the
        returned callable undoes the preparation if ``apply`` never took it (the engine calls it at the
        end of the run). ``ctx.case`` is read-only and nothing is journaled: ``apply`` journals what it
        takes. Errors are ignored (``apply`` does the work itself). Default: nothing."""
        return None

    def still_holds(self, ctx: StepContext) -> str | None:
        """For a step this case already did: None when its effect still holds, else why not.

        A contain run in a case whose steps are all done must not answer "nothing to do" while the
        gateway is running again or a DM policy was opened by hand: the engine asks each step done
        earlier, and runs again the ones whose effect is gone (their restore records keep what the
        first run saw). No side effects. Default: trust the journal."""
        return None

    def verify(self, ctx: StepContext, result: StepResult) -> Deferred | None:
        """Raise ``MoltirError(exit_code=5)`` if the effect does not hold; optionally return a watch."""
        return None
