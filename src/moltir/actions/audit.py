"""``audit.run``: the install's own deep security audit, kept as evidence, parsed and gating.

``with:``
  ``deep`` (default true)         run ``--deep`` (live gateway probe)
  ``fail_on`` (default critical)  "critical" | "warn" | "never": unexpected findings at or above
                                  this severity fail the step (exit 1), naming their check ids
  ``expect_gateway`` (auto)       "down" (containment: ``gateway.probe_failed`` for an unreachable
                                  gateway is expected), "up" (restore: the probe must authenticate;
                                  a token mismatch or no answer fails the step; but "down" when the
                                  case recorded that the gateway was not running when it was
                                  contained and it is still down), "auto" (down when
                                  the gateway port is closed when the step starts, else up but not
                                  required)
  ``timeout_s`` (default 180)     kill the audit after this long (the step's own ``timeout_s``
                                  wins when set)

The deep probe gets the current token through ``OPENCLAW_GATEWAY_TOKEN`` in the audit's
environment (never argv) only when the config does not hold it literally (a SecretRef after
``token.rotate`` on 2026.9.x): the token of this run, else the keyring entry token.rotate keeps.

Evidence: ``evidence/audit/<runbook>-<step id>/security-audit.json`` (the report, as printed),
``security-audit.stdout`` (only when the raw stdout is not just the JSON: doctor boxes before
it, or no JSON at all), ``security-audit.stderr``, ``security-audit.exit`` and
``security-audit.meta.json`` (argv, duration, whether and which token (fingerprint) went to the
probe). A re-run of the same step (resume) writes ``-2``, ``-3``, ... folders: nothing is
overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError
from moltir.openclaw import audit_report as audit
from moltir.openclaw.gateway_http import port_open

DEFAULT_TIMEOUT_S = 180.0   # 2026.1.29 took over 60 s on a loaded 2-core machine; it runs after the critical path


def _config(ctx: StepContext) -> dict[str, Any] | None:
    try:
        return ctx.install.read_config()
    except MoltirError:
        return None  # the audit itself reports an unreadable/invalid config


def _expectation(ctx: StepContext, config: dict[str, Any] | None,
                 live_port: int | None = None) -> tuple[audit.GatewayExpectation, bool]:
    """(what the gateway should be, whether the probe must prove it)."""
    wanted = str(ctx.params.get("expect_gateway", "auto"))
    if wanted == "down":
        return "down", False
    if wanted == "up":
        if live_port is None and _left_stopped(ctx, config):
            return "down", False
        return "up", bool(ctx.params.get("deep", True))
    if live_port is not None:
        return "up", False
    if config is None:
        return "unknown", False
    return ("up" if port_open(ctx.install.gateway_port(config)) else "down"), False


def _live_port(ctx: StepContext, config: dict[str, Any] | None) -> int | None:
    """The port of this install's running gateway when it is not the one its config names.

    Decision: a gateway started with ``openclaw gateway run --port N`` (``gateway.start``
    relaunches it so) listens where the audit's probe would not look (it reads
    ``OPENCLAW_GATEWAY_PORT``, then ``gateway.port``): the probe is pointed at the running
    gateway, so restore's final audit proves the gateway that actually serves.
    """
    if not ctx.params.get("deep", True):
        return None
    from moltir.openclaw import processes as proc

    gws = proc.find_gateways(ctx.install)
    live = gws[0].port if gws else None
    try:
        configured = ctx.install.gateway_port(config) if config is not None else ctx.install.gateway_port()
    except MoltirError:
        configured = None
    return live if live and live != configured else None


def _left_stopped(ctx: StepContext, config: dict[str, Any] | None) -> bool:
    """The gateway was not running when this case contained the install, and it is still down.

    Decision: ``gateway.start`` then leaves it stopped (restore puts back what was), so an
    ``expect_gateway: "up"`` audit (restore's final audit) expects it down instead of failing
    the restore on a probe that cannot reach a gateway nobody meant to start.
    """
    rec = ctx.case.restore_section("gateway")
    if not isinstance(rec, dict) or rec.get("was_running") is not False:
        return False
    try:
        port = ctx.install.gateway_port(config) if config is not None else ctx.install.gateway_port()
    except MoltirError:
        return True
    return not port_open(port)


def _timeout(ctx: StepContext) -> float:
    if ctx.timeout_s:
        return float(ctx.timeout_s)
    value = ctx.params.get("timeout_s")
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_TIMEOUT_S


def _token(ctx: StepContext, config: dict[str, Any] | None, deep: bool) -> tuple[str | None, str]:
    """The current token for the probe, when the audit cannot read it from the config itself.

    From this run (``token.rotate`` put it in ``ctx.shared``), else from the keyring entry
    ``token.rotate`` keeps (a later ``moltir restore`` run). Returns (token, where from).
    """
    if not deep or (config is not None and not audit.token_needed(config)):
        return None, ""
    token = ctx.shared.get("gateway_token")
    if isinstance(token, str) and token:
        return token, "this run"
    try:
        from moltir import keystore

        stored = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install))
    except MoltirError as exc:
        ctx.event("audit.token_unavailable", reason=exc.one_line())
        return None, ""
    return (stored, "keyring") if stored else (None, "")


def _evidence_rel(ctx: StepContext) -> str:
    base = f"evidence/audit/{ctx.runbook}-{ctx.step_id}"
    rel, n = base, 1
    while (ctx.case.dir / rel).exists():
        n += 1
        rel = f"{base}-{n}"
    return rel


class RunAudit(Action):
    name = "audit.run"
    description = "Run openclaw's own deep security audit; keep it as evidence; fail on unexpected findings."
    params = {
        "deep": Param((bool,), default=True, help="live gateway probe (--deep)"),
        "fail_on": Param((str,), default="critical", choices=("critical", "warn", "never"),
                         help="unexpected findings at or above this severity fail the step"),
        "expect_gateway": Param((str,), default="auto", choices=("down", "up", "auto"),
                                help="gateway state the probe should find"),
        "timeout_s": Param((int, float), default=DEFAULT_TIMEOUT_S, help="kill the audit after this long"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        deep = bool(ctx.params.get("deep", True))
        argv = ctx.install.command("security", "audit", "--json", *(["--deep"] if deep else []))
        config = _config(ctx)
        expect, required = _expectation(ctx, config, _live_port(ctx, config))
        needs_token = deep and (config is None or audit.token_needed(config))
        notes = [f"gateway expected {expect}" + (" (the probe must authenticate)" if required else "")]
        if needs_token:
            notes.append("the current token goes to the probe through OPENCLAW_GATEWAY_TOKEN (never argv)")
        fail_on = ctx.params.get("fail_on", "critical")
        changes = (
            Change("command", " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv)),
                   detail="; ".join(notes)),
            Change("file", f"evidence/audit/{ctx.runbook}-{ctx.step_id}/security-audit.json", after="written"),
        )
        gate = "never fails on findings" if fail_on == "never" else f"fails on unexpected {fail_on} findings"
        return Plan(f"run the install's security audit ({'deep, ' if deep else ''}read-only); {gate}",
                    changes, simulated=False)

    def apply(self, ctx: StepContext) -> StepResult:
        deep = bool(ctx.params.get("deep", True))
        fail_on = str(ctx.params.get("fail_on", "critical"))
        config = _config(ctx)
        live_port = _live_port(ctx, config)
        expect, required = _expectation(ctx, config, live_port)
        token, token_from = _token(ctx, config, deep)
        try:
            run = audit.run_audit(ctx.install, deep=deep, token=token, timeout_s=_timeout(ctx), port=live_port)
        except MoltirError as exc:
            # Decision: the binary was there when moltir found the install; gone (or no longer runnable)
            # at this step -- an update or uninstall mid-incident -- is this step failing (exit 1:
            # containment incomplete, earlier steps stand), not an environment refusal before any change
            if exc.exit_code != EXIT_ENV:
                raise
            raise MoltirError(f"the security audit could not run: {exc.message}",
                              hint="reinstall openclaw or pass --openclaw-bin PATH, then run the same moltir "
                                   "command again: it resumes at this step", exit_code=EXIT_STEP_FAILED) from None
        rel = self._store(ctx, run)
        ctx.event("audit.ran", exit=run.returncode, timed_out=run.timed_out, duration_s=round(run.duration_s, 2),
                  deep=deep, token_via_env=run.token_via_env, token_fingerprint=run.token_fingerprint,
                  token_from=token_from or None, probe_port=live_port, evidence=rel)
        try:
            report = run.report()
        except audit.AuditOutputError as exc:
            raise MoltirError(exc.message, hint=f"{exc.hint}; output kept in {ctx.case.dir / rel}",
                              exit_code=EXIT_STEP_FAILED) from None
        why_down = ("the gateway was not running when this case contained the install, and stays stopped"
                    if expect == "down" and ctx.params.get("expect_gateway") == "up"
                    else "the gateway is stopped for containment")
        assessment = audit.assess(report, gateway=expect, token_via_env=run.token_via_env, config=config,
                                  down_reason=why_down)
        gate = audit.Gate(assessment.failing(cast(audit.FailOn, fail_on)),
                          audit.probe_problem(report, expect) if required else None, fail_on)
        lines, warnings, fixes = self._summary(ctx, report, assessment, expect, run)
        details: dict[str, Any] = {
            "evidence": rel,
            "exit": run.returncode,
            "duration_s": round(run.duration_s, 2),
            "gateway_expected": expect,
            "probe": report.deep.to_json() if report.deep else None,
            "counts": assessment.counts(),
            "reported_summary": dict(report.summary),
            "unexpected": [f.check_id for f in assessment.unexpected],
            "expected": [{"checkId": a.finding.check_id, "reason": a.reason} for a in assessment.expected],
            "critical": [f.to_json() for f in assessment.unexpected if f.severity == "critical"],
            "suppressions": assessment.suppressions.to_json(),
            "fixes": fixes,
            "fail_on": fail_on,
            "gate": {"failed": gate.failed, "message": gate.message()},
        }
        ctx.event("audit.assessed", counts=assessment.counts(), unexpected=details["unexpected"],
                  expected=[a.finding.check_id for a in assessment.expected],
                  probe=report.deep.state if report.deep else None, suppressions=assessment.suppressions.any,
                  gate_failed=gate.failed)
        return StepResult("done", "\n".join(lines), details, tuple(warnings))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        gate = result.details.get("gate") or {}
        if gate.get("failed"):
            where = ctx.case.dir / str(result.details.get("evidence", "evidence/audit"))
            raise MoltirError(
                str(gate.get("message")),
                hint=(f"apply each finding's remediation (report: {where}/security-audit.json), then run "
                      f"'moltir {ctx.runbook}' again; to accept them, copy the runbook and set "
                      f"with: {{fail_on: \"never\"}} on step '{ctx.step_id}'"),
                exit_code=EXIT_STEP_FAILED)

    # ---- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _store(ctx: StepContext, run: audit.AuditRun) -> str:
        rel = _evidence_rel(ctx)
        text = run.stdout.decode("utf-8", "replace")
        start = audit.json_start(text)
        if start == 0:
            ctx.case.write_file(f"{rel}/security-audit.json", run.stdout)
        else:
            if start > 0:
                ctx.case.write_file(f"{rel}/security-audit.json", text[start:].encode("utf-8"))
            ctx.case.write_file(f"{rel}/security-audit.stdout", run.stdout)
        ctx.case.write_file(f"{rel}/security-audit.stderr", run.stderr)
        ctx.case.write_file(f"{rel}/security-audit.exit",
                            f"{'timeout' if run.timed_out else run.returncode}\n".encode())
        ctx.case.write_json(f"{rel}/security-audit.meta.json",
                            {**run.meta(), "openclaw": ctx.install.describe()})
        return rel

    @staticmethod
    def _summary(ctx: StepContext, report: audit.AuditReport, assessment: audit.Assessment,
                 expect: str, run: audit.AuditRun) -> tuple[list[str], list[str], dict[str, Any]]:
        lines, warnings = _findings_lines(ctx, report, assessment, expect, run)
        fixes: dict[str, Any] = {}
        # What moltir already fixed in this case, checked against the findings.
        dm_section = ctx.case.restore_section("dm_policy")
        if dm_section is not None and ctx.runbook != "restore":
            _dm_fixes(report, dm_section, lines, warnings, fixes)
        elif dm_section is not None:
            reopened = audit.reopened_dm_paths(dm_section)
            fixes["dm_policy_reopened"] = reopened
            if reopened:
                note = (f"restore put back OPEN DM policies (their pre-incident values): {', '.join(reopened)}; "
                        "anyone can DM the bot there again")
                warnings.append(note)  # shown once, as a warning under the step
        if ctx.case.restore_section("token") is not None:
            lines.append(_token_line(report, assessment, fixes))
        crit = [f for f in assessment.unexpected if f.severity == "critical"]
        if crit and str(ctx.params.get("fail_on", "critical")) == "never":
            warnings.append(f"{len(crit)} critical finding(s) stand (not gating: fail_on never): "
                            + ", ".join(sorted({f.check_id for f in crit})))
        return lines, warnings, fixes


def _findings_lines(ctx: StepContext, report: audit.AuditReport, assessment: audit.Assessment,
                    expect: str, run: audit.AuditRun) -> tuple[list[str], list[str]]:
    """The counts, the suppressions, every unexpected critical finding, the expected ones, the deep probe."""
    counts = assessment.counts()
    n_expected = len(assessment.expected)
    head = (f"audit: {counts['critical']} critical · {counts['warn']} warn · {counts['info']} info"
            + (f" (+{n_expected} expected)" if n_expected else "")
            + f"; openclaw {ctx.install.version or '?'}, {'deep, ' if run.deep else ''}gateway {expect}")
    lines = [head]
    warnings: list[str] = []
    sup = assessment.suppressions.lines()
    if sup:
        lines.extend(sup)
        warnings.append(sup[0])
    for f in assessment.unexpected:
        if f.severity == "critical":
            paths = f.open_policy_paths()
            where = f" ({', '.join(paths)})" if paths else ""
            lines.append(f"  CRITICAL {f.check_id}{where}: {f.title}"
                         + (f" -> fix: {f.remediation}" if f.remediation else ""))
    lines.extend(f"  expected {a.finding.check_id}: {a.reason}" for a in assessment.expected)
    if report.deep is not None:
        lines.append(f"  deep probe: {report.deep.describe()}")
    return lines, warnings


def _dm_fixes(report: audit.AuditReport, dm_section: Any, lines: list[str], warnings: list[str],
              fixes: dict[str, Any]) -> None:
    """The DM paths this case disabled, each checked against the audit's findings."""
    checks = audit.cross_check_dm(report, audit.touched_dm_paths(dm_section))
    fixes["dm_policy"] = [{"path": c.path, "status": c.status, "evidence": c.evidence} for c in checks]
    if checks:
        lines.append(f"  moltir disabled DMs at {len(checks)} path(s):")
        lines.extend(f"    {c.line()}" for c in checks if c.status != "not_covered")
        uncovered = [c for c in checks if c.status == "not_covered"]
        if uncovered:
            chans = sorted({c.path.split(".")[1] for c in uncovered})
            lines.append(f"    {len(uncovered)} path(s) not covered by this openclaw's audit (channels "
                         f"{', '.join(chans)}): moltir's own re-parse of the config is the check")
    warnings.extend(f"DMs still open at {c.path} ({c.evidence})" for c in checks if c.status == "contradicted")


def _token_line(report: audit.AuditReport, assessment: audit.Assessment, fixes: dict[str, Any]) -> str:
    """What the audit says about the token this case rotated (and what the deep probe did with it)."""
    standing = audit.token_findings(report, assessment)
    fixes["token"] = {"rotated": True, "findings": [f.check_id for f in standing]}
    probe = report.deep.state if report.deep else "not_run"
    tail = ("; the probe authenticated with it" if probe == "authenticated"
            else "; the probe refused it" if probe == "token_mismatch" else "")
    if standing:
        return ("  moltir rotated the gateway token; the audit still reports: "
                + ", ".join(f.check_id for f in standing) + tail)
    return "  moltir rotated the gateway token; no token finding remains" + tail
