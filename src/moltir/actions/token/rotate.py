"""``token.rotate``: a new gateway token into the keyring, the config pointed at it, the old one kept
from coming back, and the running gateway made to take it (see the package docstring for the order)."""

from __future__ import annotations

import json
import secrets as pysecrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from moltir import keystore
from moltir.actions.base import Action, Change, Param, Plan, RunOptions, StepContext, StepResult
from moltir.actions.token.backups import config_backups, file_holds, neutralise_backups
from moltir.actions.token.commit import (
    Prepared,
    Rotation,
    begin,
    check_boot,
    commit_config,
    record_restore,
    remember_for_rollback,
    take_prepared,
)
from moltir.actions.token.devices import report_devices
from moltir.actions.token.edits import plan_diff, read_config_text, target_edits
from moltir.actions.token.leaks import leak_warnings
from moltir.actions.token.names import (
    MODES,
    PLACEHOLDER,
    PREPARED_KEY,
    ROLLBACK_KEY,
    SETTLED_KEY,
    SIGNALLED_KEY,
    STAGING_SUFFIX,
)
from moltir.actions.token.reading import auth_section, config_value, find_gateways, resolve_mode
from moltir.actions.token.routes import reapply, reload_route
from moltir.actions.token.settle import (
    ROLLBACK_MIN_WAIT_S,
    Rollback,
    roll_forward_if_late,
    rollback,
    settle_after_failure,
)
from moltir.errors import MoltirError, env_error, verify_error
from moltir.openclaw import Install, gateway_auth, gateway_http
from moltir.redaction import fingerprint, register


def _not_running() -> MoltirError:
    return env_error("the gateway is not running", "start it first: this step proves the rotation on the "
                                                   "running gateway")


class Rotate(Action):
    name = "token.rotate"
    description = "New gateway token into the OS keyring; point the gateway at it; never let the old one back."
    params = {
        "mode": Param((str,), "auto", MODES, "auto | keyring-ref | plaintext (see module doc)"),
        "apply": Param((str,), "auto", ("auto", "none"), "how a RUNNING gateway picks up the token"),
        "timeout_s": Param((int, float), 60, None, "how long a running gateway may take to accept it"),
        "on_apply_failure": Param((str,), "keep", ("keep", "rollback"),
                                  "when a running gateway does not take the new token"),
        "require_running": Param((bool,), False, None, "fail (exit 3) when the gateway is not running"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        install = ctx.install
        mode = resolve_mode(install, str(ctx.params["mode"]))
        config = install.read_config()
        read_config_text(install.config_path)
        gateways = find_gateways(install)
        warnings: list[str] = []
        if ctx.params["require_running"] and not gateways:
            warnings.append("the gateway is not running: this step will fail (it needs a running gateway)")
        backend: keystore.BackendInfo | None = None
        try:
            backend = keystore.describe_backend(keystore.get_backend())
            backend_text = backend.describe()
            keystore.check_backend(backend, ctx.options.allow_insecure_keyring)
        except MoltirError as exc:
            backend_text = f"unusable: {exc.one_line()}"
            warnings.append(f"keyring: {exc.one_line()} (this step will fail, exit 3)")
        entry = keystore.entry_name(install)
        command = str(keystore.helper_wrapper_path(install.env))
        edits = target_edits(install, mode, PLACEHOLDER, command, backend.name if backend else "?")
        changes = [Change("keyring", f"{keystore.SERVICE}/{entry}", after="new 256-bit token",
                          detail=f"backend {backend_text}")]
        kind, value = gateway_auth.token_setting(config)
        before = ("plaintext token " + fingerprint(value) if kind == "plaintext" and isinstance(value, str)
                  else json.dumps(value) if kind == "ref" else kind)
        after = "exec SecretRef -> keyring" if mode == "keyring-ref" else "new plaintext token (0600 config)"
        changes.append(Change("config", "gateway.auth.token", before=before, after=after))
        if mode == "keyring-ref":
            changes.append(Change("file", command, after="moltir-secret launcher (0700)"))
            provider = config_value(config, "secrets", "providers", keystore.PROVIDER_ALIAS)
            changes.append(Change("config", f"secrets.providers.{keystore.PROVIDER_ALIAS}",
                                  before="present" if provider else "absent", after=f"exec {command}"))
        else:
            warnings.append(f"{install.product} {install.version or '(release unknown)'} does not take a "
                            "SecretRef for the gateway token: the token goes into the 0600 config; the keyring "
                            "copy is the record")
        for b in config_backups(install):
            changes.append(Change("file", str(b), after="token replaced (original copied to the case)"))
        if gateways and ctx.params["apply"] == "auto":
            how, _sig = reload_route(install, mode, config)
            for gw in gateways:
                changes.append(Change("process", f"gateway pid {gw.pid}", after=f"reload via {how}"
                                      if how != "restart" else "restarted the way it runs (no in-process "
                                                               "re-read in this release/config)",
                                      detail=install.caps.answer("restart_signal").source))
        elif not gateways:
            changes.append(Change("note", "gateway", detail="not running: it reads the new token at its next start"))
        diff = plan_diff(install, edits) if ctx.options.dry_run else ""  # shown by --dry-run only
        return Plan(f"rotate the gateway token ({mode})", tuple(changes), diff=diff, warnings=tuple(warnings))

    def warm(self, ctx: StepContext) -> None:
        """Plan the config edit of the rotation on the config as the earlier steps will leave it (the
        DM edits, see dm_policy.warm) and start the release's validation of the result: with an exec
        SecretRef the edited text does not depend on the token, so its reference parse is cached too; a
        plaintext token changes the text, but not its validity (the validation cache masks its value)."""
        from moltir.actions.dm_policy import WARM_CONFIG
        from moltir.openclaw.configfile import ConfigFile

        install = ctx.install
        mode = resolve_mode(install, str(ctx.params["mode"]))
        cfg = ctx.shared.get(WARM_CONFIG)
        if not isinstance(cfg, ConfigFile):
            cfg = ConfigFile.load(install)
        backend = keystore.backend_name(keystore.get_backend())  # no D-Bus traffic from this thread
        command = str(keystore.helper_wrapper_path(install.env))
        cfg.start_validation(cfg.plan_edits(target_edits(install, mode, PLACEHOLDER, command, backend,
                                                         drop_password="password" in auth_section(cfg.data))))

    def prepare(self, ctx: StepContext) -> Callable[[], None] | None:
        """During the gateway's drain (contain: gateway.stop ran first): generate the new token, put it in
        the STAGING entry and run the helper's boot check from it, the same calls :meth:`apply` makes
        first (about 0.15 s, mostly the helper's start-up), so the rotation after the stop only commits.
        Not for a step that needs the running gateway (a drill: nothing drains) nor for plaintext mode.
        The boot check runs where apply's would (no gateway: its service's or this shell's environment).
        Undo: the staging entry goes if apply never took it."""
        install = ctx.install
        if ctx.params["require_running"] or resolve_mode(install, str(ctx.params["mode"])) != "keyring-ref":
            return None
        info = keystore.preflight_for(install, ctx.options.allow_insecure_keyring)
        staging = keystore.entry_name(install) + STAGING_SUFFIX
        new = pysecrets.token_hex(32)
        register(new)
        new_fp = keystore.store(keystore.SERVICE, staging, new)
        command = str(keystore.install_helper_wrapper(install.env))
        boot = keystore.boot_check(install, command, ["--backend", info.name], expected=new, pid=None, entry=staging)
        ctx.shared[PREPARED_KEY] = Prepared(new, new_fp, staging, info, command, boot)

        def undo() -> None:
            if ctx.shared.pop(PREPARED_KEY, None) is not None:
                keystore.delete(keystore.SERVICE, staging)

        return undo

    def preflight(self, install: Install, params: Mapping[str, Any], options: RunOptions) -> None:
        """Checked before the run changes anything (the engine's preflight): the mode fits this OpenClaw,
        the gateway runs when the step needs it to, and the keyring can keep a secret. Reading a probe
        entry is what unlocks a Secret Service collection (a desktop prompts for the password here), so a
        locked or missing keyring stops ``contain`` BEFORE the gateway is stopped and the DMs edited: the
        operator unlocks it and runs again, instead of finding containment half-done.

        Boot safety (can the helper read the keyring in the gateway's own environment?) is checked here
        too, without side effects (:func:`moltir.keystore.boot_preflight`), when the step needs the
        running gateway (``require_running``: the drill): a drill the gateway's environment cannot
        serve is then a one-line exit 3 with no case opened, like the other refusals. Decision: not for
        ``contain``, whose rotation runs after ``stop-gateway``, so the environment that matters is the
        one the gateway will START in, not the running one; :meth:`apply` checks that one (with the new
        token in a staging entry) and refuses the switch there."""
        mode = resolve_mode(install, str(params.get("mode", "auto")))
        gateways = find_gateways(install) if params.get("require_running") else []
        if params.get("require_running") and not gateways:
            raise _not_running()
        info = keystore.preflight_for(install, options.allow_insecure_keyring)
        if gateways and mode == "keyring-ref":
            keystore.boot_preflight(install, info.name, gateways[0].pid)

    def apply(self, ctx: StepContext) -> StepResult:
        install = ctx.install
        mode = resolve_mode(install, str(ctx.params["mode"]))
        config = install.read_config()
        read_config_text(install.config_path)  # exists and readable, before anything changes
        gateways = find_gateways(install)
        if ctx.params["require_running"] and not gateways:
            raise _not_running()
        entry = keystore.entry_name(install)
        prepared = take_prepared(ctx, entry + STAGING_SUFFIX, mode, gateways)
        # prepared moments ago in the drain: the keyring took a write then, no second probe needed
        info = prepared.info if prepared else keystore.preflight_for(install, ctx.options.allow_insecure_keyring)
        ctx.event("token.keyring_ready", backend=info.name, insecure=info.insecure)
        r = begin(ctx, mode, config, gateways, entry, info, prepared)
        try:
            if mode == "keyring-ref":
                r.command = check_boot(ctx, r, prepared)
            record_restore(ctx, r)
            keystore.store(keystore.SERVICE, entry, r.new)
        finally:
            keystore.delete(keystore.SERVICE, r.staging)
        commit_config(ctx, r)
        rb = remember_for_rollback(ctx, r)
        try:
            return self._finish(ctx, r, rb.port)
        except BaseException as exc:
            self._rollback_after_error(ctx, exc)
            raise

    def _finish(self, ctx: StepContext, r: Rotation, port: int) -> StepResult:
        """After the commit: the backups, what could still leak, and the running gateway made to take it."""
        install, details, warnings = ctx.install, r.details, r.warnings
        details["backups"] = self._neutralise_backups(ctx, r)
        if r.auth.get("mode") not in (None, "token"):
            warnings.append(f"gateway.auth.mode was {r.auth.get('mode')!r} and is now 'token': clients that used "
                            "the old credential must use the token from the keyring")
        warnings += leak_warnings(ctx, r.config, r.old, r.new, r.gateways)
        if r.info.name == keystore.SYSTEM_NO_KEYRING:
            warnings.append(f"system install: {install.keyring_unreachable}, and this account has no usable "
                            f"keyring: the new token is only in the 0600 config {install.config_path}"
                            + (" (read it with sudo)" if install.run_as is not None else ""))
        elif r.mode == "plaintext":
            warnings.append(f"{install.product} {install.version or '(release unknown)'} does not take a "
                            f"SecretRef for the gateway token: the token is in the 0600 config "
                            f"{install.config_path}; the keyring copy ({keystore.SERVICE}/{r.entry}) is the record")

        summary = f"new token {r.new_fp} in the keyring ({r.info.label})"
        summary += "; gateway reads it from the keyring" if r.mode == "keyring-ref" else "; copied into the config"
        if not r.gateways:
            details["applied"] = None
            summary += "; gateway not running: it takes the new token at its next start"
        elif ctx.params["apply"] == "none":
            details["applied"] = None
            summary += "; not applied to the running gateway (apply: none)"
        else:
            applied = self._apply_running(ctx, r.mode, r.new, port, r.gateways, details, r.config)
            if not applied:
                self._apply_failed(ctx, details)
            summary += f"; running gateway took it via {details['route']} in {details['apply_ms']} ms"
            details["devices"] = report_devices(ctx, r.new, warnings)
        return StepResult("done", summary, details, tuple(warnings))

    def _neutralise_backups(self, ctx: StepContext, r: Rotation) -> list[dict[str, str]]:
        """:func:`neutralise_backups` (a method: tests make this stage fail, after the commit)."""
        return neutralise_backups(ctx, r.mode, r.new, r.command, r.info.name, r.old)

    def _apply_running(self, ctx: StepContext, mode: str, new: str, port: int, gateways: list[Any],
                       details: dict[str, Any], config: Mapping[str, Any]) -> bool:
        started = time.monotonic()
        route, sig = reload_route(ctx.install, mode, config)
        details["route"] = route
        details["route_source"] = ctx.install.caps.answer("restart_signal").source
        ctx.shared[SIGNALLED_KEY] = True  # signalled, restarted, or the watcher has seen the new config
        how = reapply(ctx, route, sig, [g.pid for g in gateways], new, float(ctx.params["timeout_s"]))
        if route == "restart":
            details["restart"] = how
        status = gateway_http.wait_accepted(port, new, timeout_s=float(ctx.params["timeout_s"]))
        details["apply_ms"] = int((time.monotonic() - started) * 1000)
        details["applied"] = status == gateway_http.ACCEPTED
        details["port"] = port
        ctx.event("token.applied", route=details["route"], accepted=details["applied"], status=status,
                  ms=details["apply_ms"])
        return bool(details["applied"])

    def _rollback_after_error(self, ctx: StepContext, exc: BaseException) -> None:
        """A failure (or Ctrl-C) after the keyring and the config took the new token but before the running
        gateway was proved on it. In a drill (``on_apply_failure: "rollback"``) the previous token is put
        back, so the keyring never ends up holding a token the running gateway refuses; the original error
        still propagates. Contain (``"keep"``) keeps the new token: the gateway is down, or is told to restart.
        A failure that already went through :func:`settle_after_failure` is not rolled back twice."""
        if ctx.params["on_apply_failure"] != "rollback" or ctx.shared.get(SETTLED_KEY):
            return
        rb = ctx.shared.get(ROLLBACK_KEY)
        new = ctx.shared.pop("gateway_token", None)
        if not isinstance(rb, Rollback):
            return
        ctx.shared[SETTLED_KEY] = True
        try:
            ok, how = rollback(ctx, rb, timeout_s=ROLLBACK_MIN_WAIT_S,
                               new_token=new if isinstance(new, str) else None)
            # the gateway was already told to reload: that reload may land the new token after the rollback
            if ctx.shared.get(SIGNALLED_KEY) and isinstance(new, str) and roll_forward_if_late(ctx, rb, new):
                ok, how = True, f"the gateway took the new token {fingerprint(new)} late: it was kept"
        except BaseException as inner:  # never hide the error that got us here
            ok, how = False, f"the rollback failed too ({type(inner).__name__})"
        ctx.event("token.rolled_back_after_error", error=type(exc).__name__, ok=ok, detail=how)

    def _apply_failed(self, ctx: StepContext, details: dict[str, Any]) -> None:
        wait = float(ctx.params["timeout_s"])
        what = f"the running gateway did not accept the new token within {wait:g} s (route {details['route']})"
        if ctx.params["on_apply_failure"] == "rollback":
            rb = ctx.shared.get(ROLLBACK_KEY)
            new = ctx.shared.get("gateway_token")
            settle_after_failure(ctx, rb if isinstance(rb, Rollback) else None,
                                 new if isinstance(new, str) else None, what)
        raise verify_error(what, "the keyring and the config hold the new token: restart the gateway "
                                 "(systemctl --user restart openclaw-gateway, or stop and start it)")

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        install = ctx.install
        details = result.details
        entry = keystore.entry_name(install)
        stored = keystore.read(keystore.SERVICE, entry)
        want_fp = details.get("new_fingerprint")
        if stored is None or fingerprint(stored) != want_fp:
            raise verify_error(f"the keyring entry {keystore.SERVICE}/{entry} does not hold the new token {want_fp}",
                               "run the step again")
        config = install.read_config()
        kind, value = gateway_auth.token_setting(config)
        if details.get("mode") == "keyring-ref":
            provider = config_value(config, "secrets", "providers", keystore.PROVIDER_ALIAS)
            if kind != "ref" or value != keystore.token_ref(install) or not isinstance(provider, Mapping):
                raise verify_error("the config does not point gateway.auth.token at the keyring",
                                   f"check {install.config_path} (another writer may have changed it)")
        elif kind != "plaintext" or value != stored:
            raise verify_error("the config does not hold the new token", f"check {install.config_path}")
        old = ctx.shared.get("old_gateway_token")
        if isinstance(old, str) and old:
            leftovers = [p.name for p in [install.config_path, *config_backups(install)] if file_holds(p, old)]
            if leftovers:
                raise verify_error(f"the old token is still in {', '.join(leftovers)}",
                                   "remove it from those files; OpenClaw may restore them")
