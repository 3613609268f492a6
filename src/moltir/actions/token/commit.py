"""``token.rotate``'s apply up to the commit: what :meth:`.rotate.Rotate.prepare` staged, the old and the new
token, the helper's boot check, the restore record, the keyring entry and the config; then what a
rollback needs. The running gateway is not touched here (:mod:`.rotate`)."""

from __future__ import annotations

import contextlib
import secrets as pysecrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moltir import keystore
from moltir.actions.base import StepContext
from moltir.actions.token.backups import config_backups
from moltir.actions.token.edits import target_edits, write_config
from moltir.actions.token.names import PREPARED_KEY, PREVIOUS_SUFFIX, ROLLBACK_KEY, STAGING_SUFFIX, VALIDATION_KEY
from moltir.actions.token.previous import keep_previous
from moltir.actions.token.reading import auth_section, config_value, gateway_port, old_token
from moltir.actions.token.settle import Rollback
from moltir.errors import MoltirError
from moltir.openclaw import gateway_auth
from moltir.redaction import fingerprint, register


@dataclass(frozen=True)
class Prepared:
    """The part of a rotation done during the gateway's drain (:meth:`.rotate.Rotate.prepare`)."""

    new: str = field(repr=False)
    new_fp: str
    staging: str
    info: keystore.BackendInfo
    command: str
    boot: keystore.BootCheck


@dataclass
class Rotation:
    """One rotation between the stages of :meth:`.rotate.Rotate.apply` (in memory only: holds secrets)."""

    mode: str
    config: Mapping[str, Any]  # as it was before the rotation
    gateways: list[Any]
    entry: str
    info: keystore.BackendInfo
    old: str | None = field(repr=False)
    old_source: str
    previous_keyring: str | None = field(repr=False)
    new: str = field(repr=False)
    new_fp: str
    details: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    command: str = ""  # the launcher (keyring-ref)

    @property
    def staging(self) -> str:
        return self.entry + STAGING_SUFFIX

    @property
    def auth(self) -> dict[str, Any]:
        return auth_section(self.config)


def take_prepared(ctx: StepContext, staging: str, mode: str, gateways: list[Any]) -> Prepared | None:
    """What :meth:`.rotate.Rotate.prepare` staged during the drain, when it fits this apply (keyring-ref, no running
    gateway, this install's staging entry); one that does not fit is dropped (its staging entry goes)."""
    prepared = ctx.shared.pop(PREPARED_KEY, None)
    if not isinstance(prepared, Prepared):
        return None
    if prepared.staging == staging and mode == "keyring-ref" and not gateways:
        return prepared
    keystore.delete(keystore.SERVICE, prepared.staging)  # not for this situation: start afresh
    return None


def begin(ctx: StepContext, mode: str, config: Mapping[str, Any], gateways: list[Any], entry: str,
           info: keystore.BackendInfo, prepared: Prepared | None) -> Rotation:
    """The old token (and where it came from), what the keyring entry holds now, and the new token: the
    prepared one, or one generated now and put in the staging entry."""
    old, old_source = old_token(ctx.install, config, gateways)
    register(old)
    password = config_value(config, "gateway", "auth", "password")
    register(password if isinstance(password, str) else None)
    previous_keyring = keystore.read(keystore.SERVICE, entry)
    if prepared is not None:
        new, new_fp = prepared.new, prepared.new_fp
    else:
        new = pysecrets.token_hex(32)
        register(new)
        new_fp = keystore.store(keystore.SERVICE, entry + STAGING_SUFFIX, new)
    ctx.event("token.generated", new_fingerprint=new_fp, old_fingerprint=fingerprint(old) if old else None,
              old_source=old_source, prepared=prepared is not None)
    details: dict[str, Any] = {"mode": mode, "backend": info.name, "keyring_entry": f"{keystore.SERVICE}/{entry}",
                               "new_fingerprint": new_fp,
                               "old_fingerprint": fingerprint(old) if old else None, "old_source": old_source}
    r = Rotation(mode, config, gateways, entry, info, old, old_source, previous_keyring, new, new_fp, details)
    if info.insecure:
        r.warnings.append(f"the keyring backend {info.describe()} keeps the token in a plaintext file")
    return r


def check_boot(ctx: StepContext, r: Rotation, prepared: Prepared | None) -> str:
    """keyring-ref: the helper, run through the launcher the way the gateway will run it, must return the
    new token from the staging entry (else :func:`moltir.keystore.boot_refusal`). Returns the launcher."""
    if prepared is not None:
        command, boot = prepared.command, prepared.boot
    else:
        command = str(keystore.install_helper_wrapper(ctx.install.env))
        pid = r.gateways[0].pid if r.gateways else None
        boot = keystore.boot_check(ctx.install, command, ["--backend", r.info.name], expected=r.new, pid=pid,
                                   entry=r.staging)
    ctx.event("token.boot_check", ok=boot.ok, source=boot.source, detail=boot.detail)
    r.details["boot_check"] = {"ok": boot.ok, "source": boot.source, "detail": boot.detail}
    if not boot.ok:
        raise keystore.boot_refusal(boot)
    if boot.source.startswith("this shell"):
        r.warnings.append("the gateway is not running and no service unit was found: the helper was "
                          "checked in this shell's environment; start the gateway from an environment "
                          "with the same D-Bus session and an unlocked keyring")
    return command


def record_restore(ctx: StepContext, r: Rotation) -> None:
    """``restore.json`` section ``token``: the shapes and fingerprints of what was there (no secret)."""
    install, auth = ctx.install, r.auth
    kind, value = gateway_auth.token_setting(r.config)
    backups = config_backups(install)
    ctx.case.record_restore("token", {
        "config_path": str(install.config_path),
        "mode": r.mode,
        "keyring": {"service": keystore.SERVICE, "entry": r.entry, "backend": r.info.name},
        "previous": {
            "auth_mode": auth.get("mode"),
            "token_kind": kind,
            "token_ref": value if kind == "ref" else None,
            "token_fingerprint": fingerprint(r.old) if r.old else None,
            "token_source": r.old_source,
            "password_set": "password" in auth,
            "provider": config_value(r.config, "secrets", "providers", keystore.PROVIDER_ALIAS),
            "keyring_fingerprint": fingerprint(r.previous_keyring) if r.previous_keyring else None,
        },
        "new_fingerprint": r.new_fp,
        "preimage": f"preimage/{install.config_path.name}",
        "backups": [b.name for b in backups],
        "note": "restore does not bring back the previous token (it may be compromised); "
                "the previous config bytes are in preimage/ as evidence",
    })


def commit_config(ctx: StepContext, r: Rotation) -> None:
    """Point the config at the new token (the keyring entry goes back if that fails), then keep the
    replaced token as ``<entry>:previous`` where restore needs it (:func:`keep_previous`)."""
    install = ctx.install
    try:
        changed = write_config(ctx, target_edits(install, r.mode, r.new, r.command, r.info.name,
                                                 drop_password="password" in r.auth))
    except MoltirError:
        # nothing points at the new token yet: put the keyring back the way it was
        if r.previous_keyring is not None:
            keystore.store(keystore.SERVICE, r.entry, r.previous_keyring)
        else:
            keystore.delete(keystore.SERVICE, r.entry)
        raise
    ctx.event("token.config_written", changed=changed, mode=r.mode, config=str(install.config_path))
    validated = ctx.shared.pop(VALIDATION_KEY, None)
    if validated is not None:
        r.details["validated"] = validated[0]
        if validated[1]:
            r.warnings.append(validated[1])
    kind, _ = gateway_auth.token_setting(r.config)
    old = r.old
    if old and kind != "plaintext" and ctx.case.info.get("kind") != "drill" and keep_previous(ctx, r.entry, old):
        with contextlib.suppress(MoltirError):
            keystore.store(keystore.SERVICE, r.entry + PREVIOUS_SUFFIX, old)
            ctx.event("token.previous_kept", entry=f"{keystore.SERVICE}/{r.entry}{PREVIOUS_SUFFIX}",
                      token_fingerprint=fingerprint(old))


def remember_for_rollback(ctx: StepContext, r: Rotation) -> Rollback:
    """The tokens for token.verify, and what a rollback needs, into ``ctx.shared`` (memory only)."""
    ctx.shared["gateway_token"] = r.new
    ctx.shared["old_gateway_token"] = r.old
    port = gateway_port(ctx.install, r.gateways, r.config)
    auth = r.auth
    rb = Rollback(r.mode, r.entry, r.old, r.previous_keyring,
                  config_value(r.config, "gateway", "auth", "token"), auth.get("mode"),
                  config_value(r.config, "secrets", "providers", keystore.PROVIDER_ALIAS),
                  port, [g.pid for g in r.gateways], auth.get("password"), r.command, r.info.name)
    ctx.shared[ROLLBACK_KEY] = rb
    return rb
