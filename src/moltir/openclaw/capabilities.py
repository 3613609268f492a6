"""THE capability table: what the installed OpenClaw release can do, one answer per question.

Every action asks :class:`Capabilities` ("may the gateway token be a SecretRef?", "which
signal makes a running gateway re-read its secrets?", "which key does Google Chat read its
DM policy from?"); none compares release numbers itself. Each answer carries its source, and
``moltir doctor`` prints them.

How an answer is found, best evidence first:

1. a probe of the installed package (:mod:`moltir.openclaw.package`: its docs/ and dist/),
   for the questions that have one -- a package that shows the feature wins over the table,
   with a warning when they disagree;
2. the release number (``package.json``, a bounded ``openclaw --version``, or the config's
   ``meta.lastTouchedVersion``) looked up in :data:`QUESTIONS`: the value of the last row at or
   before that release. The rows were read from the npm packages of every release from
   2026.1.29 to 2026.9.6 (tests/unit/fixtures/releases/ pins them against extracts of those
   packages). A release newer than the newest row gets the newest answers and a warning; one
   older than 2026.1.29 the oldest (clawdbot's). Every row is pinned by a unit test against
   ``tests/unit/fixtures/releases/<version>.json``, facts that ``scripts/release_facts.py`` read
   from 21 releases' packages (their README has the first release of each flip);
3. no release number at all: the state dir narrows the range of releases that could have
   written it (:func:`state_range`); where every release in that range gives the same answer,
   that is the answer, else the question's ``unknown`` value, chosen to be safe on every
   release (e.g. no restart signal: moltir restarts the gateway instead of guessing).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from moltir.openclaw import package as pkg
from moltir.openclaw import versions
from moltir.openclaw.versions import Release

OLDEST: Final = "2026.1.24"  # clawdbot's last release: the table's first row
_ALL_LEGACY_DIRS: Final = (".clawdbot", ".moltbot", ".moldbot")


@dataclass(frozen=True)
class Question:
    name: str
    text: str
    rows: tuple[tuple[str, Any], ...]  # (first release with the value, value), oldest first
    unknown: Any  # the answer when no release is known and the state dir does not settle it


@dataclass(frozen=True)
class Answer:
    value: Any
    source: str


QUESTIONS: Final[tuple[Question, ...]] = (
    Question("openclaw_home", "OPENCLAW_HOME selects the home folder",
             ((OLDEST, False), ("2026.2.9", True)), True),
    Question("discord_slack_dm_key", "DM policy key Discord and Slack read first (the other one is also read)",
             ((OLDEST, "dm.policy"), ("2026.2.17", "dmPolicy")), "dm.policy"),
    Question("secret_refs", "SecretRefs and secret providers in the config (the `secrets` CLI)",
             ((OLDEST, False), ("2026.2.26", True)), False),
    Question("external_restart", "a restart signal from another process is honoured without commands.restart",
             ((OLDEST, False), ("2026.2.19", True)), False),
    Question("readyz", "the gateway serves /readyz",
             ((OLDEST, False), ("2026.3.1", True)), False),
    Question("telegram_direct_dm", "Telegram per-chat direct.<chatId>.dmPolicy overrides",
             ((OLDEST, False), ("2026.3.1", True)), True),
    Question("gateway_token_secretref", "gateway.auth.token may be a SecretRef",
             ((OLDEST, False), ("2026.3.7", True)), False),
    Question("legacy_env", "CLAWDBOT_STATE_DIR / CLAWDBOT_CONFIG_PATH (and other CLAWDBOT_*) are honoured",
             ((OLDEST, True), ("2026.3.22", False)), True),
    Question("legacy_state_dirs", "legacy state folders used when ~/.openclaw is missing",
             ((OLDEST, _ALL_LEGACY_DIRS), ("2026.2.17", (".clawdbot", ".moldbot", ".moltbot")),
              ("2026.3.22", (".clawdbot", ".moldbot")),
              ("2026.3.31", (".clawdbot",))), _ALL_LEGACY_DIRS),
    Question("security_audit_token_flag", "`security audit --token` exists",
             ((OLDEST, False), ("2026.3.22", True)), False),
    Question("respawn_wrapper", "`gateway run` in the foreground runs under an `openclaw` respawn wrapper",
             ((OLDEST, True), ("2026.4.26", False)), True),
    Question("gateway_stop_force", "`gateway stop --force` exists",
             ((OLDEST, False), ("2026.8.1", True)), False),
    Question("audit_ledger", "`openclaw audit`: a metadata ledger of runs and tool actions (pruned at start)",
             ((OLDEST, False), ("2026.7.1", True)), False),
    Question("state_store", "where transcripts, pairing, devices and exec approvals live",
             ((OLDEST, "files"), ("2026.8.1", "sqlite")), "files"),
    Question("exec_approvals", "where exec approvals live",
             ((OLDEST, "home"), ("2026.6.6", "state-dir"), ("2026.8.1", "sqlite")), "home"),
    Question("lock_dir", "where the gateway writes its lock file",
             ((OLDEST, "tmpdir"), ("2026.8.1", "state-dir")), "any"),
    Question("googlechat_dm_key", "DM policy key Google Chat accepts (its schema is strict)",
             ((OLDEST, "dm.policy"), ("2026.8.1", "dmPolicy")), None),
    Question("profile_port", "port of a named profile without gateway.port",
             ((OLDEST, "default"), ("2026.8.1", "fnv")), "fnv"),
    Question("telegram_api_root", "channels.telegram.apiRoot exists",
             ((OLDEST, False), ("2026.3.22", True)), False),
    Question("restart_signal", "signal that makes a running gateway restart in-process and re-read secrets",
             ((OLDEST, "SIGUSR1"), ("2026.9.6", "SIGUSR2")), None),
    # docs/reference/secretref-credential-surface.md lists channels.telegram.botToken (and
    # accounts.*.botToken) from 2026.3.2 on; 2026.2.26 and 2026.3.1 list only models.providers.*.apiKey,
    # skills and Google Chat among the config's SecretRef targets (docs/gateway/secrets.md "In-scope").
    Question("telegram_token_secretref", "channels.telegram(.accounts.*).botToken may be a SecretRef",
             ((OLDEST, False), ("2026.3.2", True)), False),
    # the same surface doc lists channels.discord(.accounts.*).token and channels.slack(.accounts.*)
    # .botToken/.appToken/.userToken/.signingSecret from 2026.3.2 on (read in the 2026.3.1 and 2026.3.2
    # packages: 2026.3.1 has no such doc and its docs/gateway/secrets.md lists none of them)
    Question("chat_token_secretref", "channels.discord(.accounts.*).token and the Slack tokens / signingSecret "
             "may be a SecretRef", ((OLDEST, False), ("2026.3.2", True)), False),
    # the same surface doc lists channels.matrix(.accounts.*).accessToken from 2026.3.2 on (read in the
    # 2026.3.2 package; 2026.5.28, 2026.7.35, 2026.8.2 and 2026.9.6 still list it, the plugin now external)
    Question("matrix_token_secretref", "channels.matrix(.accounts.*).accessToken may be a SecretRef",
             ((OLDEST, False), ("2026.3.2", True)), False),
    Question("config_validate", "command that validates a config file",
             ((OLDEST, "config get"), ("2026.3.2", "config validate")), "config get"),
    # 2026.7.35 documents it (docs/web/control-ui.md); 2026.8.1 (the next release), 2026.8.2 and 2026.9.6
    # list it among the retired paths (dist/legacy-*.js, next to TIER_EVAL_RETIRED_ROOT_PATHS) and reject
    # it: "Unrecognized key".
    # redactTranscriptMessage masks secrets in a message as it is written (the model was sent the value):
    # in 2026.4.29 (dist/compaction-successor-transcript-*.js), 2026.5.28, 2026.7.35, 2026.8.2, 2026.9.6;
    # not in 2026.4.1 or earlier. Unknown release: searched (a mask is only recorded in a tool result).
    Question("transcript_masks", "transcripts keep masks (first 6 characters, '\u2026', last 4) of the secrets "
             "a tool result sent to the model provider", ((OLDEST, False), ("2026.4.29", True)), True),
    Question("control_ui_insecure_auth", "gateway.controlUi.allowInsecureAuth is a config key",
             ((OLDEST, True), ("2026.8.1", False)), False),
    # docs/gateway/sandboxing.md: 2026.1.29 runs tools "inside Docker containers" (no backend key); 2026.5.28
    # and 2026.7.35 list backends `docker`, `ssh`, `openshell`; 2026.8.2 and 2026.9.6 add `podman` (the native
    # podman CLI, docs/gateway/sandboxing/podman-backend.md in 2026.9.6). 2026.8.1 was not checked: its row
    # stays at 2026.8.2 (the safe side: a podman backend is then reported, not used).
    Question("sandbox_local_engines",
             "container engines a local sandbox backend drives (agents.defaults.sandbox.backend)",
             ((OLDEST, ("docker",)), ("2026.8.2", ("docker", "podman"))), ("docker",)),
    # How `openclaw security audit` names an open DM policy (restore --accept-risk asks). Read in the dist of
    # each package: up to 2026.5.28 the exposure matrix lists only groupPolicy ("Found groupPolicy=...")
    # and an open DM is the channel adapter's `channels.<id>.dm.open` (dist/security/audit.js); 2026.6.11,
    # 2026.7.35, 2026.8.2 and 2026.9.6 list DM policies too ('Found inbound policy="open"' in
    # audit.nondeep.runtime-*), and the 2026.9.6 CLI audit reports no `dm.open` at all (captured in
    # tests/unit/fixtures/audit/). Releases between 2026.5.28 and 2026.6.11 were not read.
    Question("audit_open_dm_check", "the check of `security audit` that reports an open DM policy",
             ((OLDEST, "channel"), ("2026.6.11", "exposure")), "exposure"),
)
BY_NAME: Final[Mapping[str, Question]] = {q.name: q for q in QUESTIONS}
NEWEST: Final = max(versions.release(r) for q in QUESTIONS for r, _ in q.rows)
KNOWN_NEWEST: Final = "2026.9.6"  # the newest release whose package moltir's table was checked against


def table_value(question: Question, release: Release) -> tuple[Any, str]:
    """(value, the row's first release) of ``question`` at ``release``."""
    value, since = question.rows[0][1], question.rows[0][0]
    for first, v in question.rows:
        if versions.release(first) <= release:
            value, since = v, first
    return value, since


@dataclass(frozen=True)
class StateRange:
    """The releases that could have written a state dir: [low, high] (None: unbounded)."""

    low: Release | None
    high: Release | None
    evidence: tuple[str, ...]


def state_range(state_dir: Path) -> StateRange:
    """Narrow the release from what the state dir holds (used only when no release is known)."""
    low: Release | None = None
    high: Release | None = None
    evidence: list[str] = []

    def at_least(rel: str, why: str) -> None:
        nonlocal low
        r = versions.release(rel)
        if low is None or r > low:
            low = r
        evidence.append(f"{why} (>= {rel})")

    def at_most(rel: str, why: str) -> None:
        nonlocal high
        r = versions.release(rel)
        if high is None or r < high:
            high = r
        evidence.append(f"{why} (<= {rel})")

    try:
        if any((state_dir / "tmp").glob("openclaw-*/gateway*.lock")):
            at_least("2026.8.1", "lock files in <state>/tmp")
        if any(state_dir.glob("agents/*/agent/openclaw-agent.sqlite")) or (state_dir / "plugin-state").is_dir():
            at_least("2026.6.11", "per-agent SQLite store or plugin-state/")
        if (state_dir / "tasks" / "runs.sqlite").exists():
            at_least("2026.4.1", "tasks/runs.sqlite")
        if any(state_dir.glob("agents/*/sessions/sessions.json")):
            at_most("2026.7.35", "JSONL sessions.json (2026.8 imports and removes it)")
        if state_dir.name == ".clawdbot" or (state_dir / "clawdbot.json").exists():
            at_most("2026.1.29", "a clawdbot-named state dir or config")
    except OSError:
        pass
    return StateRange(low, high, tuple(evidence))


def _range_value(question: Question, rng: StateRange) -> tuple[Any, str] | None:
    """The value every release in ``rng`` gives, or None when they differ (or the range is open)."""
    lo = rng.low or versions.release(OLDEST)
    hi = rng.high
    values = {repr(table_value(question, lo)[0])}
    for first, v in question.rows:
        r = versions.release(first)
        if r > lo and (hi is None or r <= hi):
            values.add(repr(v))
    if len(values) != 1:
        return None
    value, _ = table_value(question, lo)
    return value, "the state dir: " + "; ".join(rng.evidence)


@dataclass
class Capabilities:
    """Answers for one install, computed on first use (a probe may read the package's dist/)."""

    product: str  # "openclaw" | "clawdbot"
    release: Release | None
    basis: str  # where the release number came from ("package.json", "openclaw --version", ...)
    package_root: Path | None = None
    state_dir: Path | None = None
    _answers: dict[str, Answer] = field(default_factory=dict, repr=False)
    _warnings: list[str] = field(default_factory=list, repr=False)
    _range: StateRange | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---- evaluation --------------------------------------------------------------------------
    def answer(self, name: str) -> Answer:
        with self._lock:
            got = self._answers.get(name)
            if got is None:
                got = self._answers[name] = self._evaluate(BY_NAME[name])
            return got

    def value(self, name: str) -> Any:
        return self.answer(name).value

    def _evaluate(self, q: Question) -> Answer:
        table: Answer | None = None
        if self.release is not None:
            rel = self.release
            beyond = rel > versions.release(KNOWN_NEWEST)
            value, since = table_value(q, rel)
            src = f"table: release {rel}, row since {since}"
            if beyond:
                src += f"; newer than {KNOWN_NEWEST}, the newest release moltir knows"
            table = Answer(value, src)
        if self.package_root is not None:
            got = pkg.probe(q.name, self.package_root)
            if got is not None and got.value is not None:
                if table is not None and table.value != got.value:
                    self._warnings.append(
                        f"{q.name}: the table says {table.value!r} for release {self.release}, but the package "
                        f"shows {got.value!r} ({got.evidence}); using what the package shows")
                return Answer(got.value, f"package: {got.evidence}")
        if table is not None:
            return table
        if self.state_dir is not None:
            if self._range is None:
                self._range = state_range(self.state_dir)
            ranged = _range_value(q, self._range)
            if ranged is not None:
                return Answer(*ranged)
        return Answer(q.unknown, "unknown release: the value that is safe on every release")

    def all(self) -> dict[str, Answer]:
        return {q.name: self.answer(q.name) for q in QUESTIONS}

    @property
    def warnings(self) -> tuple[str, ...]:
        out = []
        if self.release is None:
            out.append("the OpenClaw release is unknown (no binary with a version, no meta.lastTouchedVersion "
                       "in the config): answers come from the state dir or are the ones safe on every release")
        elif self.release > versions.release(KNOWN_NEWEST):
            out.append(f"{self.product} {self.release} is newer than {KNOWN_NEWEST}, the newest release moltir "
                       "was checked against: moltir uses that release's answers")
        elif self.release < versions.release(OLDEST):
            out.append(f"{self.product} {self.release} is older than {OLDEST}, the oldest release moltir knows")
        return (*out, *self._warnings)

    def describe(self) -> dict[str, Any]:
        return {"release": str(self.release) if self.release else None, "basis": self.basis,
                "answers": {k: {"value": list(a.value) if isinstance(a.value, tuple) else a.value,
                                "source": a.source} for k, a in self.all().items()},
                "warnings": list(self.warnings)}

    # ---- typed questions (what actions ask) ----------------------------------------------------
    @property
    def gateway_token_secretref(self) -> bool:
        return bool(self.value("gateway_token_secretref"))

    @property
    def secret_refs(self) -> bool:
        return bool(self.value("secret_refs"))

    @property
    def telegram_token_secretref(self) -> bool:
        return bool(self.value("telegram_token_secretref"))

    @property
    def chat_token_secretref(self) -> bool:
        return bool(self.value("chat_token_secretref"))

    @property
    def matrix_token_secretref(self) -> bool:
        return bool(self.value("matrix_token_secretref"))

    def restart_signal(self, config: Mapping[str, Any] | None = None) -> str | None:
        """The signal a running gateway takes as "restart in-process, re-read config and secrets", when
        another process (moltir) sends it; None when the release has none, or ignores an external one
        (before 2026.2.26 unless the config sets ``commands.restart: true``)."""
        sig = self.value("restart_signal")
        if sig is None:
            return None
        if self.value("external_restart"):
            return str(sig)
        commands = config.get("commands") if isinstance(config, Mapping) else None
        allowed = isinstance(commands, Mapping) and commands.get("restart") is True
        return str(sig) if allowed else None

    @property
    def discord_slack_dm_key(self) -> str:
        return str(self.value("discord_slack_dm_key"))

    @property
    def googlechat_dm_key(self) -> str | None:
        v = self.value("googlechat_dm_key")
        return None if v is None else str(v)

    @property
    def telegram_direct_dm(self) -> bool:
        return bool(self.value("telegram_direct_dm"))

    @property
    def legacy_env(self) -> bool:
        return bool(self.value("legacy_env"))

    @property
    def legacy_state_dirs(self) -> Sequence[str]:
        return tuple(self.value("legacy_state_dirs"))

    @property
    def openclaw_home(self) -> bool:
        return bool(self.value("openclaw_home"))

    @property
    def profile_port_fnv(self) -> bool:
        return bool(self.value("profile_port") == "fnv")

    @property
    def state_store(self) -> str:
        return str(self.value("state_store"))

    @property
    def config_validate(self) -> str:
        return str(self.value("config_validate"))

    @property
    def respawn_wrapper(self) -> bool:
        return bool(self.value("respawn_wrapper"))

    @property
    def audit_ledger(self) -> bool:
        return bool(self.value("audit_ledger"))

    @property
    def transcript_masks(self) -> bool:
        return bool(self.value("transcript_masks"))

    @property
    def readyz(self) -> bool:
        return bool(self.value("readyz"))

    @property
    def audit_open_dm_check(self) -> str:
        """"channel": ``channels.<id>.dm.open``; "exposure": ``security.exposure.open_groups_with_*``."""
        return str(self.value("audit_open_dm_check"))


def for_install(product: str, version: str | None, basis: str, *, package_root: Path | None,
                state_dir: Path | None) -> Capabilities:
    return Capabilities(product, versions.parse(version), basis if version else "none",
                        package_root=package_root, state_dir=state_dir)
