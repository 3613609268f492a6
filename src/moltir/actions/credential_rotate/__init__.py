"""``credential.rotate``: one credential of the inventory replaced by a new value the operator gives.

Run by ``moltir rotate CREDENTIAL-ID`` (its own small case, kind ``rotate``). The new value comes from a
hidden prompt or stdin and reaches this action in memory only (:data:`INBOX`, keyed by credential id):
never a runbook parameter, the journal, argv or a child's environment.

Order: preflight (before the run changes anything): the credential is one ``moltir rotate`` handles
(:mod:`moltir.openclaw.rotation_table`), a new value was given and differs from the current one, the
keyring answers (locked or missing: exit 3), and the issuer accepts the new value (Telegram ``getMe``,
Discord ``GET /users/@me``, Slack ``auth.test`` / ``apps.connections.open`` (a signing secret: its form
only), a model provider's models list; refused: exit 2; unreachable: exit 3). Apply: the keyring entry
``credential:<install key>:<id>`` -> the config key (moltir's exec SecretRef where the release takes one,
else the value, 0600) or the ``.env`` line -> the running gateway re-reads (its in-process restart signal,
else a restart the way it runs) and must answer on its own token again. Verify: the keyring holds the new
value, and no config or ``.env`` line holds the old one. The journal carries fingerprints only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir import keystore
from moltir.actions.base import Action, Change, Param, Plan, RunOptions, StepContext, StepResult
from moltir.actions.credential_rotate.writes import config_edits, entry_name, reapply, write_config, write_dotenv
from moltir.errors import EXIT_ENV, MoltirError, usage_error, verify_error
from moltir.openclaw import Install, provider_check, rotation_table
from moltir.openclaw.credentials import Credential, inventory
from moltir.redaction import fingerprint, register

INBOX: dict[str, str] = {}  # credential id -> the new value (in memory only; moltir rotate fills it)


def find(install: Install, cred_id: str) -> tuple[Credential, rotation_table.Target]:
    """The credential and how to rotate it; exit 2 naming the problem when moltir cannot."""
    found = {c.id: c for c in inventory(install)}
    cred = found.get(cred_id)
    if cred is None:
        raise usage_error(f"{install.state_dir} holds no credential {cred_id!r}",
                          "'moltir rotate plan' lists the ids")
    config = install.read_config() if install.config_path.is_file() else {}
    t = rotation_table.target(install, config, cred)
    if t is None:
        raise usage_error(f"moltir rotate does not rotate {cred_id}: {rotation_table.by_hand(cred)}",
                          "'moltir rotate plan' says how each credential is rotated")
    return cred, t


def check_at_issuer(install: Install, t: rotation_table.Target, value: str) -> provider_check.Check:
    if t.family == "telegram":
        return provider_check.telegram(t.base, value, install.env, t.proxy)
    if t.family == "discord":
        return provider_check.discord(t.base, value, install.env, t.proxy)
    if t.family in ("slack", "slack-app"):
        method = "auth.test" if t.family == "slack" else "apps.connections.open"
        return provider_check.slack(t.base, method, value, install.env)
    if t.family == "slack-signing":
        return provider_check.slack_signing_secret(value)
    if t.family == "matrix":
        return provider_check.matrix_whoami(t.base, value, install.env)[0]
    if t.family == "github":
        return provider_check.github_user(t.base, value, install.env)
    return provider_check.model_key(t.base, value, t.provider, install.env)


class RotateCredential(Action):
    name = "credential.rotate"
    description = "Replace one credential by a new value validated at its issuer; the gateway re-reads it."
    params = {
        "credential": Param((str,), "", None, "the inventory id (moltir rotate plan)"),
        "timeout_s": Param((int, float), 60, None, "how long the gateway may take to re-read it"),
    }

    def plan(self, ctx: StepContext) -> Plan:
        cred, t = find(ctx.install, str(ctx.params["credential"]))
        how = t.describe()
        changes = [Change("keyring", f"{keystore.SERVICE}/{entry_name(ctx.install, cred.id)}", after="the new value"),
                   Change("config" if t.store != "dotenv" else "file", f"{cred.file} {cred.key}",
                          before=fingerprint(cred.value) if cred.value else cred.storage, after=how["store_where"]),
                   Change("process", "gateway", after=how["reload"])]
        return Plan(f"rotate {cred.id} ({how['validate']})", tuple(changes))

    def preflight(self, install: Install, params: Mapping[str, Any], options: RunOptions) -> None:
        cid = str(params.get("credential", ""))
        cred, t = find(install, cid)
        new = INBOX.get(cid)
        if not new:
            raise usage_error("no new value was given", "type it at the hidden prompt, or pipe it with --from-stdin")
        if new == cred.value:
            raise usage_error(f"the new value is the one {cid} holds now ({fingerprint(new)})",
                              "get a new one from the issuer first")
        keystore.preflight(options.allow_insecure_keyring)
        check = check_at_issuer(install, t, new)
        if check.verdict == provider_check.REFUSED:
            raise usage_error(f"the issuer refused the new value for {cid} ({check.detail}); nothing changed",
                              "check the value you gave (a new token from the issuer) and run again")
        if check.verdict != provider_check.GOOD:
            raise MoltirError(f"could not validate the new value for {cid} ({check.detail}); nothing changed",
                              hint="check the network path to the issuer and run again", exit_code=EXIT_ENV)

    def apply(self, ctx: StepContext) -> StepResult:
        from moltir.actions.token.reading import find_gateways, gateway_port, old_token

        install = ctx.install
        cid = str(ctx.params["credential"])
        cred, t = find(install, cid)
        new = INBOX[cid]
        register(new)
        config = install.read_config()
        gateways = find_gateways(install)
        gw_token, _src = old_token(install, config, gateways)
        register(gw_token)
        info = keystore.preflight(ctx.options.allow_insecure_keyring)
        entry = entry_name(install, cid)
        new_fp = keystore.store(keystore.SERVICE, entry, new)
        old_fp = fingerprint(cred.value) if cred.value else None
        ctx.event("credential.stored", credential=cid, entry=f"{keystore.SERVICE}/{entry}", new_fingerprint=new_fp,
                  old_fingerprint=old_fp)
        ctx.case.record_restore(f"credential:{cid}", {
            "credential": cid, "file": cred.file, "key": cred.key, "store": t.store, "old_fingerprint": old_fp,
            "new_fingerprint": new_fp, "note": "restore never brings the old value back (it may be compromised); "
                                               "the old bytes are in preimage/ as evidence"})
        if t.store == "dotenv":
            write_dotenv(ctx, Path(cred.file), cred.key, new)
        else:
            write_config(ctx, config_edits(install, t, new, info.name))
        ctx.event("credential.written", credential=cid, store=t.store, file=cred.file)
        port = gateway_port(install, gateways, config)
        how = reapply(ctx, t, gateways, gw_token, port, float(ctx.params.get("timeout_s", 60)))
        ctx.event("credential.applied", credential=cid, how=how)
        ctx.shared[f"credential_old:{cid}"] = cred.value
        warnings = _webhook_finding(ctx, t, new, config)
        return StepResult("done", f"{cid} rotated ({old_fp or 'unreadable'} -> {new_fp}); {how}",
                          {"credential": cid, "store": t.store, "keyring_entry": f"{keystore.SERVICE}/{entry}",
                           "new_fingerprint": new_fp, "old_fingerprint": old_fp, "applied": how, "file": cred.file,
                           "validated": t.describe()["validate"]}, tuple(warnings))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        install = ctx.install
        cid = str(ctx.params["credential"])
        stored = keystore.read(keystore.SERVICE, entry_name(install, cid))
        if stored is None or fingerprint(stored) != result.details.get("new_fingerprint"):
            raise verify_error(f"the keyring does not hold the new value of {cid}", "run moltir rotate again")
        old = ctx.shared.get(f"credential_old:{cid}")
        found = inventory(install)
        cred = next((c for c in found if c.id == cid), None)
        if cred is not None and cred.storage != "secretref" and cred.value != stored:
            raise verify_error(f"{cred.file} does not hold the new value of {cid}", f"check {cred.file}")
        file = result.details.get("file")
        held = [c.id for c in found if isinstance(old, str) and old and c.value == old and c.file == file]
        if held:
            raise verify_error(f"the old value is still in {file} at {', '.join(held)}", "replace it there too")


def _webhook_finding(ctx: StepContext, t: rotation_table.Target, new: str, config: Mapping[str, Any]) -> list[str]:
    """Telegram: a webhook URL the bot has at Telegram that the config does not set is a finding (whoever
    held the old token could set one and receive the bot's updates; it survives the token change)."""
    if t.family != "telegram":
        return []
    url = provider_check.telegram_webhook(t.base, new, ctx.install.env, t.proxy)
    configured = {v for v in _webhook_urls(config) if v}
    ctx.event("credential.webhook", credential=t.cred_id, webhook_set=bool(url), configured=bool(configured))
    if url is None:
        return ["could not read the bot's webhook (getWebhookInfo): check it by hand"]
    if url and url not in configured:
        from moltir.text import shown

        return [f"FINDING: Telegram has a webhook nobody configured for this bot: {shown(url, 300)} (whoever held "
                "the old token may receive its updates); remove it with deleteWebhook once you have checked it"]
    return []


def _webhook_urls(config: Mapping[str, Any]) -> list[str]:
    tg = config.get("channels", {}).get("telegram") if isinstance(config.get("channels"), Mapping) else None
    if not isinstance(tg, Mapping):
        return []
    accounts = tg.get("accounts")
    nodes = [tg, *(accounts.values() if isinstance(accounts, Mapping) else ())]
    return [str(x.get("webhookUrl")) for x in nodes if isinstance(x, Mapping) and x.get("webhookUrl")]
