"""What ``openclaw security audit --json`` prints, parsed: the findings, the deep probe and the
report (either generation's shape; the facts are in :mod:`moltir.openclaw.audit_report`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from moltir.errors import EXIT_STEP_FAILED, MoltirError

SEVERITIES = ("critical", "warn", "info")
ProbeState = Literal["not_run", "authenticated", "token_mismatch", "no_credentials", "unreachable", "failed"]

# a config path naming a DM/group policy, as the audit writes them in details
_POLICY_PATH_RE = re.compile(r"channels\.[A-Za-z0-9_\-.*]+?\.(?:dmPolicy|groupPolicy|dm\.policy)")


class AuditOutputError(MoltirError):
    """The audit ran but gave no usable report (timeout, invalid config, no JSON)."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint, exit_code=EXIT_STEP_FAILED)


@dataclass(frozen=True)
class Finding:
    check_id: str
    severity: str  # "critical" | "warn" | "info" (anything else is kept and gated like "warn")
    title: str
    detail: str
    remediation: str | None = None
    suppression_reason: str | None = None  # only for suppressedFindings

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Finding:
        check_id = obj.get("checkId")
        if not isinstance(check_id, str) or not check_id:
            raise ValueError("a finding has no checkId")
        sup = obj.get("suppression")
        reason = sup.get("reason") if isinstance(sup, Mapping) else None
        rem = obj.get("remediation")
        return cls(check_id=check_id, severity=str(obj.get("severity", "warn")),
                   title=str(obj.get("title", "")), detail=str(obj.get("detail", "")),
                   remediation=str(rem) if isinstance(rem, str) and rem else None,
                   suppression_reason=str(reason) if isinstance(reason, str) and reason else None)

    @property
    def gate_level(self) -> str:
        """``critical``, ``warn`` or ``info`` for gating; unknown severities count as ``warn``."""
        return self.severity if self.severity in SEVERITIES else "warn"

    def policy_paths(self) -> tuple[str, ...]:
        """Config paths of DM/group policies the finding's detail names, in order, unique."""
        seen: dict[str, None] = {}
        for m in _POLICY_PATH_RE.finditer(self.detail):
            seen.setdefault(m.group(0), None)
        return tuple(seen)

    def open_policy_paths(self) -> tuple[str, ...]:
        """Policy paths the detail says are ``open``.

        ``channels.x.dmPolicy="open"`` (dm.open, trust-model heuristics) or a ``- path`` line
        under ``Found inbound policy="open" at:`` (security.exposure.*).
        """
        out: dict[str, None] = {}
        for path in self.policy_paths():
            listed = self.check_id.startswith("security.exposure.") and re.search(
                rf"^- {re.escape(path)}\s*$", self.detail, re.M)
            if f'{path}="open"' in self.detail or listed:
                out.setdefault(path, None)
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"checkId": self.check_id, "severity": self.severity, "title": self.title,
                               "detail": self.detail}
        if self.remediation:
            out["remediation"] = self.remediation
        if self.suppression_reason:
            out["suppression_reason"] = self.suppression_reason
        return out


@dataclass(frozen=True)
class DeepProbe:
    attempted: bool
    url: str | None
    ok: bool
    error: str | None
    close_code: int | None = None
    close_reason: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DeepProbe:
        close = obj.get("close")
        code = close.get("code") if isinstance(close, Mapping) else None
        reason = close.get("reason") if isinstance(close, Mapping) else None
        err = obj.get("error")
        return cls(attempted=bool(obj.get("attempted", False)), url=str(obj["url"]) if obj.get("url") else None,
                   ok=obj.get("ok") is True, error=str(err) if err else None,
                   close_code=code if isinstance(code, int) else None,
                   close_reason=str(reason) if isinstance(reason, str) else None)

    @property
    def state(self) -> ProbeState:
        """What the probe proves about the gateway and the token it used.

        ``authenticated``: ok, or 2026.9.6's "missing scope: operator.read" (the token passed;
        the probe just has no device identity). ``token_mismatch``: the gateway refused the
        token. ``no_credentials``: the probe had no token to send. ``unreachable``: nothing
        listens. ``failed``: anything else.
        """
        if not self.attempted:
            return "not_run"
        if self.ok:
            return "authenticated"
        err = (self.error or "").lower()
        if "missing scope" in err:
            return "authenticated"
        if "mismatch" in err or (self.close_code == 1008 and "unauthorized" in err):
            return "token_mismatch"
        if "token missing" in err or "password missing" in err or "unresolved" in err:
            return "no_credentials"
        if ("econnrefused" in err or "not reachable" in err or "ehostunreach" in err
                or "timeout" in err or "timed out" in err or self.close_code == 1006):
            return "unreachable"
        if "unauthorized" in err:
            return "token_mismatch"
        return "failed"

    def describe(self) -> str:
        words = {
            "not_run": "not run",
            "authenticated": "the gateway answered and accepted the token",
            "token_mismatch": "the gateway REFUSED the token (token mismatch)",
            "no_credentials": "the probe had no token to present",
            "unreachable": "the gateway is not reachable",
            "failed": "the probe failed",
        }
        text = words[self.state]
        if self.error:
            text += f' ("{self.error}")'
        return text

    def to_json(self) -> dict[str, Any]:
        return {"attempted": self.attempted, "url": self.url, "ok": self.ok, "error": self.error,
                "close_code": self.close_code, "state": self.state}


@dataclass(frozen=True)
class AuditReport:
    findings: tuple[Finding, ...]
    summary: Mapping[str, int]  # as OpenClaw reported it
    suppressed: tuple[Finding, ...] = ()
    deep: DeepProbe | None = None
    secret_diagnostics: tuple[str, ...] = ()
    ts: int | None = None
    prefix: str = ""  # text before the JSON (2026.1.29 doctor boxes)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            out[f.severity] = out.get(f.severity, 0) + 1
        return out

    def by_id(self, check_id: str) -> list[Finding]:
        return [f for f in self.findings if f.check_id == check_id]

    def to_json(self) -> dict[str, Any]:
        return {"summary": dict(self.summary), "counts": self.counts(),
                "findings": [f.to_json() for f in self.findings],
                "suppressed": [f.to_json() for f in self.suppressed],
                "deep": self.deep.to_json() if self.deep else None,
                "secret_diagnostics": list(self.secret_diagnostics)}


def json_start(text: str) -> int:
    """Offset of the first line that starts with ``{`` (after optional spaces), or -1."""
    for m in re.finditer(r"^[ \t]*\{", text, re.M):
        return m.start()
    return -1


def parse_report(text: str) -> AuditReport:
    """Parse the stdout of ``security audit --json`` (either generation).

    Raises :class:`AuditOutputError` naming the problem when there is no report: no JSON
    (2026.1.29 with an invalid config), OpenClaw's failure envelope (2026.9.x), or JSON that is
    not an audit report.
    """
    start = json_start(text)
    if start < 0:
        raise AuditOutputError("the audit printed no JSON report")
    try:
        data, _end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise AuditOutputError(f"the audit's JSON output is malformed ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise AuditOutputError("the audit's JSON output is not an object")
    if data.get("ok") is False and "findings" not in data:
        err = data.get("error")
        message = err.get("message") if isinstance(err, Mapping) else err
        issues = data.get("issues")
        parts = [str(message or "the audit failed")]
        if isinstance(issues, list):
            parts += [f"{i.get('path')}: {i.get('message')}" for i in issues[:5] if isinstance(i, Mapping)]
        raise AuditOutputError("openclaw security audit failed: " + "; ".join(parts))
    if isinstance(data.get("report"), dict) and "findings" not in data:  # --fix shape
        report_obj: dict[str, Any] = dict(data["report"])
        report_obj.setdefault("secretDiagnostics", data.get("secretDiagnostics", []))
        data = report_obj
    raw_findings = data.get("findings")
    if not isinstance(raw_findings, list):
        raise AuditOutputError("the audit's JSON has no findings list")
    try:
        findings = tuple(Finding.from_json(f) for f in raw_findings if isinstance(f, Mapping))
        suppressed = tuple(Finding.from_json(f) for f in data.get("suppressedFindings") or []
                           if isinstance(f, Mapping))
    except ValueError as exc:
        raise AuditOutputError(f"the audit's JSON is not a report: {exc}") from None
    summary_raw = data.get("summary")
    summary = ({k: int(v) for k, v in summary_raw.items() if isinstance(v, int) and not isinstance(v, bool)}
               if isinstance(summary_raw, Mapping) else {})
    deep_raw = data.get("deep")
    gw = deep_raw.get("gateway") if isinstance(deep_raw, Mapping) else None
    diags = data.get("secretDiagnostics")
    ts = data.get("ts")
    return AuditReport(findings=findings, summary=summary, suppressed=suppressed,
                       deep=DeepProbe.from_json(gw) if isinstance(gw, Mapping) else None,
                       secret_diagnostics=tuple(str(d) for d in diags) if isinstance(diags, list) else (),
                       ts=ts if isinstance(ts, int) else None, prefix=text[:start])

