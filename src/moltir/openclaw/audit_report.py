"""Run the install's own ``openclaw security audit --json [--deep]`` and make sense of it.

Facts this module relies on (shared/research/openclaw-facts.md §6, openclaw-run.md §6,
openclaw-old-run.md §5, §7), re-checked against captures from the real releases in
``tests/unit/fixtures/audit/``:

* The exit status is 0 whenever a report is produced, whatever the findings. Severity lives in
  the JSON: ``{ts, summary{critical,warn,info}, findings[{checkId,severity,title,detail,
  remediation?}], suppressedFindings?, deep?{gateway{attempted,url,ok,error,close}},
  secretDiagnostics?}`` (2026.1.29 has no ``secretDiagnostics`` and no suppressions).
* An invalid config exits 1: 2026.9.x prints ``{"ok":false,"error":{...},"issues":[...]}``,
  2026.1.29 prints no JSON at all (doctor "boxes" on stdout, the problem on stderr).
* 2026.1.29 may print doctor boxes on stdout BEFORE the JSON: the JSON starts at the first
  line that starts with ``{``.
* The deep probe. 2026.9.6 never reports ``ok: true`` from the CLI: with the right token the
  probe connects without a device identity and gets ``"missing scope: operator.read"``
  (authenticated); a wrong token gives ``"... token mismatch ..."`` (close code 1008); a
  stopped gateway gives ``ECONNREFUSED`` (close code 1006). 2026.1.29 reports ``ok: true``.
  Every failed probe adds the finding ``gateway.probe_failed`` (warn), even the quirk.
* 2026.1.29 has no ``--token`` option; 2026.9.6 has one, but a credential on argv is visible
  to every local user, so moltir never uses it: the token goes through the child's
  environment (``OPENCLAW_GATEWAY_TOKEN``), and only when the audit cannot read it from the
  config itself (:func:`token_needed`). When moltir does that, 2026.9.6 adds
  ``gateway.env_token_overrides_config`` (warn): an artefact of the audit run, shown as
  expected.
* Channel DM findings (``channels.<id>.dm.open|disabled``) come only from channel plugins the
  audit loads with their security adapter. 2026.1.29 loads them when
  ``plugins.entries.<id>.enabled`` is true; the 2026.9.6 CLI loads only the setup plugin of
  bundled Telegram, which has no security adapter, so it reports no ``channels.telegram.dm.*``
  at all and names open DM policies only inside ``security.exposure.*`` details
  (``Found inbound policy="open" at: - channels.telegram.dmPolicy``). The cross-check below
  therefore has three outcomes: confirmed, contradicted, not covered by this audit.

The report itself (findings, the deep probe, the parser of either generation's JSON) is in
:mod:`moltir.openclaw.audit_output`; this module runs the audit and assesses what it found.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from moltir.errors import env_error
from moltir.openclaw import Install
from moltir.openclaw.audit_output import (
    SEVERITIES,
    AuditOutputError,
    AuditReport,
    DeepProbe,
    Finding,
    ProbeState,
    json_start,
    parse_report,
)
from moltir.redaction import fingerprint, redact, register

FailOn = Literal["critical", "warn", "never"]
GatewayExpectation = Literal["down", "up", "unknown"]

PROBE_FAILED = "gateway.probe_failed"
ENV_TOKEN_CONFLICT = "gateway.env_token_overrides_config"  # noqa: S105 - a check id, not a secret
SUPPRESSIONS_ACTIVE = "security.audit.suppressions.active"
TOKEN_CHECKS = ("gateway.token_too_short", "hooks.token_reuse_gateway_token", ENV_TOKEN_CONFLICT,
                "gateway.probe_auth_secretref_unavailable", "config.secrets.gateway_password_in_config")


# ---- running it ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditRun:
    argv: tuple[str, ...]  # never holds a credential
    returncode: int | None  # None: killed at the timeout
    stdout: bytes
    stderr: bytes
    duration_s: float
    deep: bool
    timeout_s: float
    token_via_env: bool = False
    token_fingerprint: str | None = None
    port: int | None = None  # OPENCLAW_GATEWAY_PORT given to the probe (gateway on a non-config port)

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    def stderr_head(self, lines: int = 3) -> str:
        text = redact(self.stderr.decode("utf-8", "replace"))
        kept = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= set("│├╯╮◇─ ")]
        return " | ".join(kept[:lines])

    def report(self) -> AuditReport:
        """The parsed report, or :class:`AuditOutputError` saying why there is none."""
        cmd = " ".join(self.argv[-4:]) if len(self.argv) > 4 else " ".join(self.argv)
        if self.timed_out:
            raise AuditOutputError(f"'{cmd}' did not finish within {self.timeout_s:g} s and was killed",
                                   hint=_with_stderr("raise the step's timeout_s, or check the install", self))
        try:
            report = parse_report(self.stdout.decode("utf-8", "replace"))
        except AuditOutputError as exc:
            rc = f"exit {self.returncode}"
            hint = ("fix what OpenClaw complains about (the audit itself changed nothing), then run the same "
                    "moltir command again: it resumes at this step"
                    if self.returncode else "run the same command by hand to see what it prints")
            raise AuditOutputError(f"{exc.message} ({rc})", hint=_with_stderr(hint, self)) from None
        return report

    def meta(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "exit": self.returncode, "timed_out": self.timed_out,
                "duration_s": round(self.duration_s, 3), "deep": self.deep, "timeout_s": self.timeout_s,
                "token_via_env": self.token_via_env, "token_fingerprint": self.token_fingerprint,
                "probe_port": self.port}


def _with_stderr(hint: str, run: AuditRun) -> str:
    head = run.stderr_head()
    return f"{hint}; stderr: {head}" if head else hint


def token_needed(config: Mapping[str, Any]) -> bool:
    """Whether the deep probe needs moltir to hand it the gateway token (via the environment).

    Not when ``gateway.auth.token`` is a literal string (the audit reads it itself) or the auth
    mode is not ``token``; yes when it is a SecretRef object, a ``${VAR}`` template, or absent.
    """
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    if not isinstance(auth, Mapping):
        return True
    mode = auth.get("mode")
    if mode not in (None, "token"):
        return False
    token = auth.get("token")
    return not (isinstance(token, str) and token.strip() and "${" not in token)


def run_audit(install: Install, *, deep: bool = True, token: str | None = None,
              timeout_s: float = 60.0, port: int | None = None) -> AuditRun:
    """Run ``<openclaw> security audit --json [--deep]`` for ``install`` and keep everything it says.

    ``token`` (the current gateway token) is passed as ``OPENCLAW_GATEWAY_TOKEN`` in the child's
    environment, never on argv. ``port`` (a gateway running on another port than its config
    names, started with ``gateway run --port N``) goes in as ``OPENCLAW_GATEWAY_PORT``, which
    both releases' probe read before ``gateway.port``. Inherited gateway credentials are stripped. The child runs in
    its own session so a timeout kills the whole tree (2026.1.29 respawns itself).
    Missing/unrunnable binary -> exit 3. A timeout is reported in the result, not raised.
    """
    argv = install.command("security", "audit", "--json", *(["--deep"] if deep else []))
    extra: dict[str, str] = {}
    if token:
        register(token)
        extra["OPENCLAW_GATEWAY_TOKEN"] = token
    if port:
        extra["OPENCLAW_GATEWAY_PORT"] = str(port)
    env = install.child_env(extra)
    from moltir.openclaw.processes import run_capture  # psutil: imported only when needed

    start = time.monotonic()
    returncode: int | None
    try:
        done = run_capture(argv, timeout_s=timeout_s, env=env,
                           cwd=str(install.home) if install.home.is_dir() else None, run_as=install.run_as)
        stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, returncode = exc.output or b"", exc.stderr or b"", None
    except OSError as exc:
        raise env_error(f"cannot run {argv[0]}: {exc.strerror or exc}",
                        "check the openclaw install, or pass --openclaw-bin PATH") from None
    return AuditRun(argv=tuple(argv), returncode=returncode, stdout=stdout, stderr=stderr,
                    duration_s=time.monotonic() - start, deep=deep, timeout_s=timeout_s,
                    token_via_env=bool(token), token_fingerprint=fingerprint(token) if token else None,
                    port=port)


# ---- what is expected at this point -------------------------------------------------------------

@dataclass(frozen=True)
class Assessed:
    finding: Finding
    expected: bool
    reason: str = ""


@dataclass(frozen=True)
class Suppressions:
    configured: tuple[Mapping[str, Any], ...]  # security.audit.suppressions[] from the config
    hidden: tuple[Finding, ...]  # suppressedFindings: what they hid from this report
    active_finding: bool  # the unsuppressible security.audit.suppressions.active was reported

    @property
    def any(self) -> bool:
        return bool(self.configured or self.hidden or self.active_finding)

    def lines(self) -> list[str]:
        if not self.any:
            return []
        n = len(self.configured)
        out = [f"AUDIT SUPPRESSIONS ARE ACTIVE ({n} configured in security.audit.suppressions): "
               "they can hide findings during an incident; review them"]
        for s in self.configured:
            what = str(s.get("checkId", "?"))
            for key in ("titleIncludes", "detailIncludes"):
                if s.get(key):
                    what += f" [{key}: {s[key]!r}]"
            reason = s.get("reason")
            out.append(f"  suppression: {what}" + (f" (reason: {reason})" if reason else ""))
        for f in self.hidden:
            out.append(f"  hidden by a suppression: {f.severity} {f.check_id}: {f.title}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"configured": [dict(s) for s in self.configured], "hidden": [f.to_json() for f in self.hidden],
                "active_finding": self.active_finding}


def active_suppressions(report: AuditReport, config: Mapping[str, Any] | None) -> Suppressions:
    configured: list[Mapping[str, Any]] = []
    sec = config.get("security") if isinstance(config, Mapping) else None
    aud = sec.get("audit") if isinstance(sec, Mapping) else None
    raw = aud.get("suppressions") if isinstance(aud, Mapping) else None
    if isinstance(raw, list):
        configured = [s for s in raw if isinstance(s, Mapping)]
    return Suppressions(tuple(configured), report.suppressed, bool(report.by_id(SUPPRESSIONS_ACTIVE)))


@dataclass(frozen=True)
class Assessment:
    report: AuditReport
    gateway: GatewayExpectation
    items: tuple[Assessed, ...]
    suppressions: Suppressions

    @property
    def unexpected(self) -> tuple[Finding, ...]:
        return tuple(a.finding for a in self.items if not a.expected)

    @property
    def expected(self) -> tuple[Assessed, ...]:
        return tuple(a for a in self.items if a.expected)

    def counts(self) -> dict[str, int]:
        """Unexpected findings per severity."""
        out = dict.fromkeys(SEVERITIES, 0)
        for f in self.unexpected:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out

    def failing(self, fail_on: FailOn) -> tuple[Finding, ...]:
        if fail_on == "never":
            return ()
        levels = {"critical"} if fail_on == "critical" else {"critical", "warn"}
        return tuple(f for f in self.unexpected if f.gate_level in levels)


def assess(report: AuditReport, *, gateway: GatewayExpectation, token_via_env: bool = False,
           config: Mapping[str, Any] | None = None,
           down_reason: str = "the gateway is stopped for containment") -> Assessment:
    """Mark the findings that are expected at this point (shown, not counted).

    * ``gateway.probe_failed`` when the probe authenticated (2026.9.6's "missing scope" quirk),
      or when the gateway is meant to be down (containment) and the probe found nothing there;
    * ``gateway.env_token_overrides_config`` when moltir itself passed the token to the probe
      through the environment.
    """
    probe = report.deep.state if report.deep else "not_run"
    items: list[Assessed] = []
    for f in report.findings:
        reason = ""
        if f.check_id == PROBE_FAILED:
            if probe == "authenticated":
                reason = ("the probe authenticated; OpenClaw 2026.9.x reports 'missing scope: operator.read' "
                          "for a probe without a device identity")
            elif gateway == "down" and probe == "unreachable":
                reason = down_reason
        elif f.check_id == ENV_TOKEN_CONFLICT and token_via_env:
            reason = "moltir passed the current token to the probe through OPENCLAW_GATEWAY_TOKEN"
        items.append(Assessed(f, bool(reason), reason))
    return Assessment(report, gateway, tuple(items), active_suppressions(report, config))


def probe_problem(report: AuditReport, gateway: GatewayExpectation) -> str | None:
    """With the gateway meant to be up: why the deep probe does not prove it (None when it does)."""
    if gateway != "up":
        return None
    if report.deep is None:
        return "the audit ran without --deep, so it did not probe the gateway"
    state = report.deep.state
    if state == "authenticated":
        return None
    if state == "token_mismatch":
        return f"deep probe: {report.deep.describe()}; the restored gateway is not serving the new token"
    return f"deep probe: {report.deep.describe()}"


# ---- what moltir already fixed, cross-checked -----------------------------------------------------

@dataclass(frozen=True)
class FixCheck:
    path: str
    status: Literal["confirmed", "contradicted", "not_covered"]
    evidence: str

    def line(self) -> str:
        mark = {"confirmed": "confirmed", "contradicted": "CONTRADICTED", "not_covered": "not covered"}[self.status]
        return f"{self.path}: {mark} ({self.evidence})"


_DM_KEYS = ("dmPolicy", "dm.policy")


def touched_dm_paths(section: Any) -> list[str]:
    """DM-policy config paths found in what ``dm_policy.set`` recorded for restore.

    Tolerant of the record's layout: any ``"path"`` value (dotted string or list of keys), or
    any mapping key, that is a ``channels.…`` path ending in a DM-policy key.
    """
    found: dict[str, None] = {}

    def consider(value: Any) -> None:
        if isinstance(value, list) and value and all(isinstance(p, str | int) for p in value):
            value = ".".join(str(p) for p in value)
        if isinstance(value, str) and value.startswith("channels.") and value.endswith(_DM_KEYS):
            found.setdefault(value, None)

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                consider(k)
                if k == "path":
                    consider(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(section)
    return list(found)


def reopened_dm_paths(section: Any) -> list[str]:
    """DM-policy paths whose recorded pre-incident value was ``"open"`` (restore puts that back)."""
    out: list[str] = []
    entries = section.get("paths") if isinstance(section, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        old = entry.get("old")
        if isinstance(old, Mapping):
            old = old.get("value")
        if old == "open":
            paths = touched_dm_paths([{"path": entry.get("path")}])
            out.extend(p for p in paths if p not in out)
    return out


def cross_check_dm(report: AuditReport, paths: Iterable[str]) -> tuple[FixCheck, ...]:
    """For each DM-policy path moltir set to "disabled": does the audit agree?"""
    out: list[FixCheck] = []
    for path in paths:
        parts = path.split(".")
        channel = parts[1] if len(parts) > 2 else "?"
        contra = next((f for f in report.findings if path in f.open_policy_paths()), None)
        if contra is not None:
            out.append(FixCheck(path, "contradicted", f"{contra.check_id} says it is open"))
            continue
        disabled = report.by_id(f"channels.{channel}.dm.disabled")
        if any(f'{path}="disabled"' in f.detail for f in disabled):
            out.append(FixCheck(path, "confirmed", f"channels.{channel}.dm.disabled"))
            continue
        other = [f for f in report.findings if f.check_id.startswith(f"channels.{channel}.dm.")]
        if other:
            ids = ", ".join(sorted({f.check_id for f in other}))
            out.append(FixCheck(path, "not_covered", f"the audit reports {ids} for other paths, not this one"))
        else:
            out.append(FixCheck(path, "not_covered",
                                f"this openclaw's audit reports no DM findings for channel '{channel}'; "
                                "moltir's own re-parse is the check"))
    return tuple(out)


def token_findings(report: AuditReport, assessment: Assessment | None = None) -> list[Finding]:
    """Token-related findings still standing (expected ones excluded when an assessment is given)."""
    pool: Sequence[Finding] = assessment.unexpected if assessment else report.findings
    return [f for f in pool if f.check_id in TOKEN_CHECKS or f.check_id.startswith("gateway.token")]


@dataclass(frozen=True)
class Gate:
    """Why the audit step fails, as one line naming the check ids (and the open policy paths)."""

    failing: tuple[Finding, ...] = ()
    probe: str | None = None
    fail_on: str = "critical"

    @property
    def failed(self) -> bool:
        return bool(self.failing or self.probe)

    def message(self) -> str:
        parts: list[str] = []
        if self.failing:
            names = []
            for f in self.failing:
                paths = f.open_policy_paths() or f.policy_paths()
                names.append(f"{f.check_id} ({', '.join(paths)})" if paths else f.check_id)
            level = "critical" if self.fail_on == "critical" else "critical/warn"
            parts.append(f"the audit reports {len(self.failing)} unexpected {level} finding"
                         f"{'s' if len(self.failing) != 1 else ''}: " + ", ".join(names))
        if self.probe:
            parts.append(self.probe)
        return "; ".join(parts)


__all__ = ["ENV_TOKEN_CONFLICT", "PROBE_FAILED", "SEVERITIES", "SUPPRESSIONS_ACTIVE", "TOKEN_CHECKS", "Assessed",
           "Assessment", "AuditOutputError", "AuditReport", "AuditRun", "DeepProbe", "FailOn", "Finding", "FixCheck",
           "Gate", "GatewayExpectation", "ProbeState", "Suppressions", "active_suppressions", "assess",
           "cross_check_dm", "json_start", "parse_report", "probe_problem", "reopened_dm_paths", "run_audit",
           "token_findings", "token_needed", "touched_dm_paths"]
