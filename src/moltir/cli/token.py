"""``moltir token repin`` and ``moltir token unpin``: where the gateway reads its token from.

After a rotation on a release with SecretRefs the gateway reads its token through moltir's helper:
``secrets.providers.moltir`` runs the launcher ``<moltir home>/bin/moltir-secret``, which execs
the Python that installed it, by absolute path. Rebuild or remove that environment (a pipx
reinstall, a deleted venv) and the gateway can no longer read its token at its next start.
``moltir doctor`` says so; these two commands are the ways out:

* ``repin``: point the launcher at THIS moltir (its interpreter) and check, in the gateway's own
  environment, that the helper returns the token again;
* ``unpin``: move the gateway off moltir's helper: the token moltir holds goes back into the 0600
  config as plaintext and ``secrets.providers.moltir`` is removed (the config's pre-image is kept,
  0600, under ``<moltir home>/backups/``); a running gateway takes it through its config watcher.
  The token does not change (``moltir drill`` rotates it).
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from moltir.cli import get_install, handle_errors, install_options, json_option
from moltir.errors import EXIT_ENV, EXIT_OK, EXIT_USAGE, MoltirError
from moltir.openclaw import gateway_auth


def _pinned(install: Any) -> dict[str, Any]:
    from moltir import keystore

    config: dict[str, Any] = install.read_config()
    kind, value = gateway_auth.token_setting(config)
    if not (kind == "ref" and isinstance(value, dict) and value.get("provider") == keystore.PROVIDER_ALIAS):
        raise MoltirError(f"the gateway of {install.state_dir} does not read its token through moltir's helper "
                          "(its gateway.auth.token is not moltir's SecretRef): nothing to do", exit_code=EXIT_OK)
    return config


@click.group("token")
def token() -> None:
    """Where the gateway reads its token: repin (to this moltir) or unpin (back to the config)."""


def _say(as_json: bool, lines: list[str], data: dict[str, Any]) -> None:
    if as_json:
        from moltir.result import echo_json

        echo_json(data)
    else:
        for line in lines:
            click.echo(line)


@token.command("repin")
@json_option
@install_options
@click.pass_context
@handle_errors
def repin(ctx: click.Context, /, as_json: bool, **kw: Any) -> None:
    """Point the secret helper's launcher at this moltir and prove the gateway can read its token."""
    from moltir import keystore
    from moltir.openclaw import processes as proc

    install = get_install(ctx, kw)
    config = _pinned(install)
    path = keystore.install_helper_wrapper(install.env)
    backend = keystore.pinned_backend_name(config) or keystore.backend_name(keystore.get_backend())
    gateways = proc.find_gateways(install)
    boot = keystore.boot_check(install, str(path), ["--backend", backend], pid=gateways[0].pid if gateways else None)
    if not boot.ok:
        raise MoltirError(f"the launcher {path} now runs {sys.executable}, but the helper still cannot read the "
                          f"token in the gateway's environment: {boot.detail}",
                          hint="unlock the keyring for that environment, or 'moltir token unpin'", exit_code=EXIT_ENV)
    _say(as_json, [f"launcher {path} now runs {sys.executable}",
                   f"the gateway's environment reads its token through it ({boot.source})"],
         {"launcher": str(path), "python": sys.executable, "boot_check": boot.source})


@token.command("unpin")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@json_option
@install_options
@click.pass_context
@handle_errors
def unpin(ctx: click.Context, /, yes: bool, as_json: bool, **kw: Any) -> None:
    """Put the token back into the 0600 config as plaintext; stop using moltir's helper."""
    import os

    from moltir import keystore, paths
    from moltir.actions.token import reload_route
    from moltir.fsutil import atomic_write, ensure_private_dir
    from moltir.openclaw import gateway_http, json5edit
    from moltir.openclaw.configfile import ConfigFile
    from moltir.redaction import fingerprint

    install = get_install(ctx, kw)
    config = _pinned(install)
    value, source = keystore.configured_token(install)
    if not value:
        raise MoltirError(f"cannot read the gateway's token from the keyring ({source}): nothing was changed",
                          hint="unlock the keyring moltir pinned, then run again", exit_code=EXIT_ENV)
    if not yes:
        if not sys.stdin.isatty():
            raise MoltirError("refusing to run without confirmation: stdin is not a terminal",
                              hint="add --yes", exit_code=EXIT_USAGE)
        click.echo(f"the token {fingerprint(value)} goes into {install.config_path} (0600) as plaintext, and "
                   "secrets.providers.moltir is removed", err=True)
        if not click.confirm("Proceed?", default=False, err=True):
            raise MoltirError("cancelled; nothing was changed", exit_code=EXIT_USAGE)
    cfg = ConfigFile.load(install)
    backups = paths.moltir_home(install.env) / "backups"
    ensure_private_dir(backups)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    keep = backups / f"{install.key}-{stamp}-{install.config_path.name}"
    atomic_write(keep, cfg.preimage, mode=0o600)
    cfg.write(cfg.plan_edits({("gateway", "auth", "token"): value,
                              ("secrets", "providers", keystore.PROVIDER_ALIAS): json5edit.DELETE}))
    if install.config_path.stat().st_mode & 0o077:
        os.chmod(install.config_path, 0o600)
    lines = [f"the gateway token {fingerprint(value)} is in {install.config_path} again (plaintext, 0600); "
             f"the previous config is kept in {keep}"]
    if (note := cfg.validation_warning()) is not None:
        click.echo(f"warning: {note}", err=True)
    from moltir.actions.gateway import find_gateways

    data: dict[str, Any] = {"config": str(install.config_path), "token_fingerprint": fingerprint(value),
                            "backup": str(keep), "running": False}
    gateways = find_gateways(install)
    if gateways:
        route, _sig = reload_route(install, "plaintext", config)
        port = gateways[0].port or install.gateway_port()
        status = gateway_http.wait_accepted(port, value, timeout_s=60.0)
        if status != gateway_http.ACCEPTED:
            raise MoltirError(f"the running gateway does not answer on its token after the edit ({route}; HTTP "
                              f"{status or 'no answer'})", hint="restart the gateway", exit_code=EXIT_ENV)
        lines.append(f"the running gateway still accepts it (port {port}, {route})")
        data.update(running=True, port=port, route=route)
    _say(as_json, lines, data)
