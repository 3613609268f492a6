"""``token.verify``: prove on the running gateway that the new token is accepted and the old one refused."""

from __future__ import annotations

from moltir import keystore
from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.actions.token.names import PREVIOUS_SUFFIX, ROLLBACK_KEY
from moltir.actions.token.previous import old_token_from_case
from moltir.actions.token.reading import find_gateways, gateway_port
from moltir.actions.token.settle import Rollback, settle_after_failure
from moltir.errors import EXIT_ENV, MoltirError, env_error, verify_error
from moltir.openclaw import gateway_http
from moltir.redaction import fingerprint


class Verify(Action):
    name = "token.verify"
    description = "Prove on the running gateway: new token accepted, old token refused (HTTP, loopback)."
    params = {
        "timeout_s": Param((int, float), 30, None, "how long to wait for the new token to be accepted"),
        "rollback": Param((bool,), False, None, "on failure, put the previous token back (drills)"),
        "require_running": Param((bool,), False, None, "fail (exit 3) when the gateway is not running"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        gateways = find_gateways(ctx.install)
        if not gateways:
            return Plan("prove the token: skipped, the gateway is not running",
                        (Change("note", "gateway", detail="not running"),))
        port = gateway_port(ctx.install, gateways, ctx.install.read_config())
        return Plan(f"prove the token on 127.0.0.1:{port}: new accepted (HTTP 400), old refused (HTTP 401)",
                    (Change("command", f"POST http://127.0.0.1:{port}/tools/invoke", detail="no side effect"),))

    def _tokens(self, ctx: StepContext) -> tuple[str | None, str | None]:
        """(new, old). In a later run (restore) the new token is the one the gateway is configured with
        (the 0600 config on 2026.1.x, else the keyring through the pinned backend), the old one is read
        back from the case (:func:`old_token_from_case`)."""
        new = ctx.shared.get("gateway_token")
        old = ctx.shared.get("old_gateway_token")
        if not isinstance(new, str):
            new, _ = keystore.configured_token(ctx.install)
            if new is None:
                new = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install))
        if not isinstance(old, str):
            old = old_token_from_case(ctx)
        return new, old

    def apply(self, ctx: StepContext) -> StepResult:
        gateways = find_gateways(ctx.install)
        if not gateways:
            if ctx.params["require_running"]:
                raise env_error("the gateway is not running", "start it, then run again")
            return StepResult("skipped", "gateway not running: nothing to prove (it reads the new token at "
                                         "its next start)", {"running": False})
        new, old = self._tokens(ctx)
        if not new:
            raise MoltirError("no new token to prove: the keyring holds none for this install",
                              hint="run token.rotate first", exit_code=EXIT_ENV)
        port = gateway_port(ctx.install, gateways, ctx.install.read_config())
        proof = gateway_http.prove(port, new, old, timeout_s=float(ctx.params["timeout_s"]))
        details = {"port": port, "new_status": proof.new_status, "old_status": proof.old_status,
                   "new_fingerprint": fingerprint(new), "old_fingerprint": fingerprint(old) if old else None,
                   "ok": proof.ok}
        ctx.event("token.proved", **details)
        if proof.ok:
            if old and ctx.shared.get(PREVIOUS_SUFFIX) == old:  # proved refused: the keyring copy has served
                keystore.delete(keystore.SERVICE, keystore.entry_name(ctx.install) + PREVIOUS_SUFFIX)
            tail = "old refused (401)" if old else "old token unknown to this run: not tested"
            return StepResult("done", f"new token {fingerprint(new)} accepted (400); {tail}", details)
        what = (f"token proof failed on port {port}: new token HTTP {proof.new_status or 'no answer'}, "
                f"old token HTTP {proof.old_status if proof.old_status is not None else '-'}")
        if ctx.params["rollback"] and proof.new_status != gateway_http.ACCEPTED:
            rb = ctx.shared.get(ROLLBACK_KEY)
            if isinstance(rb, Rollback):
                settle_after_failure(ctx, rb, new, what)
        raise verify_error(what, "the gateway may not have reloaded: restart it and run 'moltir drill' again")

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        if result.status == "done" and not result.details.get("ok"):
            raise verify_error("the token proof did not hold")
