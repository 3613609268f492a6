"""``harden.verify``: the install's own ``openclaw security audit --json`` must no longer report any
finding a harden step of this case targets; the report is kept in the case.

Which check each setting targets (ids from 2026.9.6 ``docs/gateway/security/audit-checks.md`` and
``dist``; the 2026.1.29 ones seen from its real audit on a weak config, see
tests/integration/test_harden_real.py):

* dm: ``channels.<id>.dm.open``, and a ``security.exposure.open_*`` finding whose detail names a DM
  policy path (``dmPolicy`` / ``dm.policy``; 2026.9.6 lists open DMs there);
* groups: ``channels.<id>.groups.open``, and ``security.exposure.open_*`` naming a ``groupPolicy``;
* permissions: ``fs.state_dir.perms_*``, ``fs.config.perms_*``, ``fs.config_include.perms_*``,
  ``fs.credentials_dir.perms_*``, ``fs.auth_profiles.perms_*``;
* bind: ``gateway.bind_network_accessible``, ``gateway.bind_no_auth``, ``gateway.auth_no_rate_limit``
  and ``gateway.control_ui.allowed_origins_required`` (2026.9.6 raises the last two for a
  non-loopback bind);
* control_ui: ``gateway.control_ui.insecure_auth`` (2026.1.29), a
  ``config.insecure_or_dangerous_flags`` naming ``allowInsecureAuth``;
* tools: no audit check; ``harden.config`` re-reads the config.

A step that changed nothing, or was refused (the bind kept for Tailscale), is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.harden.config_step import SECTION
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error
from moltir.openclaw import audit_report as audit
from moltir.openclaw.audit_output import Finding

_DM_PATH = r"(dmPolicy|dm\.policy)"
#: setting -> (checkId pattern, detail pattern or None)
TARGETS: Final[Mapping[str, tuple[tuple[str, str | None], ...]]] = {
    "dm": ((r"channels\..+\.dm\.open", None), (r"security\.exposure\.open_.+", _DM_PATH)),
    "groups": ((r"channels\..+\.groups\.open", None), (r"security\.exposure\.open_.+", r"groupPolicy")),
    "permissions": ((r"fs\.(state_dir|config|config_include|credentials_dir|auth_profiles)\.perms_.+", None),),
    "bind": ((r"gateway\.bind_(network_accessible|no_auth)", None), (r"gateway\.auth_no_rate_limit", None),
             (r"gateway\.control_ui\.allowed_origins_required", None)),
    "control_ui": ((r"gateway\.control_ui\.insecure_auth", None),
                   (r"config\.insecure_or_dangerous_flags", r"allowInsecureAuth")),
}


def targeted(settings: Iterable[str], findings: Iterable[Finding]) -> dict[str, list[str]]:
    """setting -> the check ids still reported that it targets."""
    out: dict[str, list[str]] = {}
    found = list(findings)
    for setting in settings:
        for id_pat, detail_pat in TARGETS.get(setting, ()):
            for f in found:
                if re.fullmatch(id_pat, f.check_id) and (detail_pat is None or re.search(detail_pat, f.detail)):
                    out.setdefault(setting, []).append(f.check_id)
    return out


def applied_settings(ctx: StepContext) -> list[str]:
    """The settings a step of this case changed (config keys or modes)."""
    section: Mapping[str, Any] = ctx.case.restore_section(SECTION) or {}
    names = [s for s, paths in dict(section.get("settings") or {}).items() if paths]
    return [*names, *(["permissions"] if section.get("modes") else [])]


class HardenVerify(Action):
    name = "harden.verify"
    description = "Run openclaw's security audit; fail when a finding a harden step targets is still there."
    params = {"timeout_s": Param((int, float), default=120, help="kill the audit after this long")}

    def plan(self, ctx: StepContext) -> Plan:
        argv = ctx.install.command("security", "audit", "--json")
        return Plan("run the install's security audit (read-only): every finding a harden step targets must be gone",
                    (Change("command", " ".join(argv[-3:])),), simulated=False)

    def apply(self, ctx: StepContext) -> StepResult:
        timeout = float(ctx.timeout_s or ctx.params.get("timeout_s") or 120)
        run = audit.run_audit(ctx.install, deep=False, timeout_s=timeout)
        rel = f"evidence/audit/{ctx.runbook}-{ctx.step_id}"
        ctx.case.write_file(f"{rel}/security-audit.stdout", run.stdout)
        ctx.case.write_file(f"{rel}/security-audit.stderr", run.stderr)
        try:
            report = run.report()
        except audit.AuditOutputError as exc:
            raise MoltirError(exc.message, hint=exc.hint, exit_code=EXIT_STEP_FAILED) from None
        settings = applied_settings(ctx)
        left = targeted(settings, report.findings)
        ids = sorted({f.check_id for f in report.findings})
        ctx.event("harden.audit", checked=settings, still=left, findings=ids)
        summary = (f"audit: no finding left that the applied steps target ({', '.join(settings) or 'none applied'})"
                   if not left else "audit still reports: " + "; ".join(f"{s}: {', '.join(v)}"
                                                                       for s, v in left.items()))
        return StepResult("done", summary, {"checked": settings, "still": left, "findings": ids,
                                            "evidence": rel})

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        left = result.details.get("still") or {}
        if left:
            raise verify_error(str(result.summary),
                               f"see {ctx.case.dir / str(result.details.get('evidence'))}; fix by hand or report it")
