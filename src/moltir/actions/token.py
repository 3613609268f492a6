"""``token.rotate`` and ``token.verify``: a new gateway token, kept in the OS keyring, proved live.

Where the token goes (``mode``)
    ``keyring-ref`` (auto on openclaw 2026.9.x, which has SecretRefs): the keyring holds the
    only copy; the config says ``gateway.auth.token = {source: "exec", provider: "moltir", id:
    "gateway-token:<install key>"}`` and ``secrets.providers.moltir`` runs moltir's helper
    (:mod:`moltir.secret_helper`, through the launcher :func:`moltir.keystore.install_helper_wrapper`).
    ``plaintext`` (auto on openclaw 2026.1.x and clawdbot, which read the token only from the
    config): the value goes into the 0600 config and the keyring copy is the record (the source
    of truth moltir and the operator read it from).

Order (each step only when the previous one held)
    keyring preflight -> generate (``secrets.token_hex(32)``, registered as a secret at once)
    -> store in a staging entry and read it back -> boot-safety check (keyring-ref: the helper,
    run the way the gateway runs it, must return that staging token) -> ``restore.json``
    section ``token`` (shapes and fingerprints of what was there) -> commit the keyring entry
    -> edit the config (comment-preserving; the exact old bytes go to ``preimage/``) -> rewrite
    OpenClaw's own config backups (``.bak*``, ``.last-good``, ``.clobbered.*``, copied to
    ``preimage/backups/`` first) so none can bring the old token back -> report what could
    override or leak it (``<state>/.env``, service environment, ``hooks.token``,
    ``gateway.remote.token``) -> apply it to a running gateway -> list (or revoke) paired devices.

How a running gateway picks it up (``apply: "auto"``; pinned by tests)
    keyring-ref: SIGUSR2 to every gateway process of the install (2026.9.x: in-process restart,
    same pid, re-resolves SecretRefs; the CLI's ``secrets reload`` would need the old token on
    its argv). plaintext: the config file watcher (2026.9.x hot-applies ``gateway.auth.token``;
    2026.1.x restarts in-process on it). Then the new token must be accepted over HTTP within
    ``timeout_s``; if it is not, ``on_apply_failure: "rollback"`` (the drill) puts the old token
    back in the keyring and config and re-applies, so the gateway is never left without a token
    the operator holds; ``"keep"`` (contain) leaves the new token in place and says to restart.

Nothing here writes a token to the journal, the console or a child's argv: results carry
fingerprints; CLI children get the token in ``OPENCLAW_GATEWAY_TOKEN``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as pysecrets
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from moltir import keystore
from moltir.actions.base import Action, Change, Param, Plan, RunOptions, StepContext, StepResult
from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError, env_error, usage_error, verify_error
from moltir.fsutil import atomic_write, os_error
from moltir.openclaw import Install, gateway_http, json5edit
from moltir.redaction import fingerprint, register

MODES = ("auto", "keyring-ref", "plaintext")
ENV_TOKEN_VARS = ("OPENCLAW_GATEWAY_TOKEN", "CLAWDBOT_GATEWAY_TOKEN")
PLACEHOLDER = "<new token>"
ROLLBACK_KEY = "token_rollback"  # ctx.shared: what a rollback needs (in memory only)
SETTLED_KEY = "token_settled"  # ctx.shared: a rollback (or roll-forward) already ran in this run
SIGNALLED_KEY = "token_signalled"  # ctx.shared: the running gateway was told to take the new token
VALIDATION_KEY = "token_validation"  # ctx.shared: (verdict text, warning or None) of the last config write
STAGING_SUFFIX = ":next"
# The token a rotation replaced, kept IN THE KEYRING (never in a file) when the config's pre-image does
# not hold it (it came from the keyring or the environment), so that a later `moltir restore` can still
# prove it refused; token.verify removes it once it has.
PREVIOUS_SUFFIX = ":previous"


# ---- reading the install ------------------------------------------------------------------------

def resolve_mode(install: Install, requested: str) -> str:
    if requested not in MODES:
        raise usage_error(f"token.rotate: mode {requested!r} is not one of {', '.join(MODES)}")
    can_ref = install.caps.gateway_token_secretref
    unreachable = install.keyring_unreachable  # a system unit's user, a container
    if unreachable is not None:
        if requested == "keyring-ref":
            raise usage_error(f"{unreachable}, so it cannot take its token from a keyring SecretRef",
                              'use mode "plaintext" (or "auto"): the token goes into its 0600 config')
        return "plaintext"
    if requested == "auto":
        return "keyring-ref" if can_ref else "plaintext"
    if requested == "keyring-ref" and not can_ref:
        raise usage_error(f"{install.product} {install.version or '(release unknown)'} does not accept a "
                          "SecretRef for gateway.auth.token, so the gateway cannot read its token from the keyring",
                          'use mode "plaintext" (or "auto"): the token goes into the 0600 config and the '
                          "keyring keeps the record")
    return requested


def _auth(config: Mapping[str, Any]) -> dict[str, Any]:
    gw = config.get("gateway")
    auth = gw.get("auth") if isinstance(gw, Mapping) else None
    return dict(auth) if isinstance(auth, Mapping) else {}


def _get(config: Mapping[str, Any], *path: str) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (``export`` and quotes allowed); missing file -> {}."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return {}
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", line)
        if not m:
            continue
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        out[m.group(1)] = value
    return out


def _gateway_env(gw: Any) -> dict[str, str]:
    try:
        return dict(gw.process().environ())
    except Exception:  # psutil errors: treat as unknown
        return {}


def old_token(install: Install, config: Mapping[str, Any], gateways: list[Any]) -> tuple[str | None, str]:
    """The token the gateway uses now (in memory only) and where it came from."""
    kind, value = keystore.token_source(config)
    gw_env = _gateway_env(gateways[0]) if gateways else {}
    if kind == "plaintext" and isinstance(value, str) and value:
        return value, "config (plaintext)"
    if kind == "ref" and isinstance(value, Mapping):
        if value.get("source") == "exec" and value.get("provider") == keystore.PROVIDER_ALIAS:
            # where the gateway reads it; a backend that cannot be loaded or read here makes it unknown (the
            # current backend may hold a stale copy: proving or rolling back to that would be wrong)
            pinned = keystore.pinned_backend(config)
            where = keystore.pinned_backend_name(config)
            if pinned is None:
                return None, f"keyring backend {where} (pinned in the config) cannot be loaded here"
            try:
                stored = keystore.read(keystore.SERVICE, str(value.get("id")), backend=pinned)
            except MoltirError as exc:
                return None, f"keyring backend {where} (pinned in the config) unreadable here: {exc.message}"
            return stored, "keyring (moltir SecretRef)" if stored else "keyring entry missing"
        if value.get("source") == "env":
            var = str(value.get("id"))
            got = gw_env.get(var) or install.env.get(var)
            return got, f"environment variable {var}"
        return None, f"SecretRef {value.get('source')}:{value.get('provider')} (moltir cannot read it)"
    if kind == "env-shorthand" and isinstance(value, str):
        var = value.strip("${}")
        got = gw_env.get(var) or install.env.get(var)
        return got, f"environment variable {var}"
    password = _get(config, "gateway", "auth", "password")
    if isinstance(password, str) and password and not password.startswith("$"):
        return password, "config (gateway.auth.password)"
    for var in ENV_TOKEN_VARS:
        got = gw_env.get(var) or read_env_file(install.state_dir / ".env").get(var)
        if got:
            return got, f"{var} (no token in the config)"
    return None, "none (the gateway makes an ephemeral token at each start)"


def auth_holds(config: Any, token: str | None) -> bool:
    """Would this config make ``token`` the gateway's credential (``gateway.auth.token`` / ``.password``)?"""
    if not token or not isinstance(config, Mapping):
        return False
    auth = _auth(config)
    return token in (auth.get("token"), auth.get("password"))


def _file_holds(path: Path, token: str) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        return auth_holds(json5edit.parse(text, source=str(path)).value, token)
    except (OSError, MoltirError):
        return token in path.read_text(errors="replace") if path.exists() else False


def config_backups(install: Install) -> list[Path]:
    """OpenClaw's own copies of the config: ``.bak``, ``.bak.N``, ``.last-good``, ``.clobbered.*``."""
    cfg = install.config_path
    folder, name = cfg.parent, cfg.name
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.iterdir()):
        n = p.name
        if not n.startswith(name + ".") or n.endswith(".tmp") or not p.is_file() or p.is_symlink():
            continue
        rest = n[len(name) + 1:]
        if re.match(r"^(bak(\.\d+)?|last-good|clobbered\..+)$", rest):
            out.append(p)
    return out


def find_gateways(install: Install) -> list[Any]:
    from moltir.actions.gateway import find_gateways as find

    return list(find(install))


def gateway_port(install: Install, gateways: list[Any], config: Mapping[str, Any]) -> int:
    for gw in gateways:
        if getattr(gw, "port", None):
            return int(gw.port)
    return install.gateway_port(config)


# ---- the config edits ------------------------------------------------------------------------

def target_edits(install: Install, mode: str, token: str, command: str, backend: str, *,
                 drop_password: bool = False) -> dict[tuple[str, ...], Any]:
    """The config edits of a rotation. ``drop_password``: a ``gateway.auth.password`` is the old shared
    credential too (token mode does not use it): it goes (its value stays in the case's pre-image)."""
    edits: dict[tuple[str, ...], Any] = {("gateway", "auth", "mode"): "token"}
    if mode == "keyring-ref":
        edits[("gateway", "auth", "token")] = keystore.token_ref(install)
        edits[("secrets", "providers", keystore.PROVIDER_ALIAS)] = keystore.provider_config(command, backend)
    else:
        edits[("gateway", "auth", "token")] = token
    if drop_password:
        edits[("gateway", "auth", "password")] = json5edit.DELETE
    return edits


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise env_error(f"{path} does not exist: this OpenClaw install has no config",
                        "pass --config / --state-dir / --profile for the install to act on") from None
    except OSError as exc:
        raise os_error(exc, f"reading {path}") from None


def write_config(ctx: StepContext, edits: Mapping[tuple[str, ...], Any]) -> bool:
    """Apply ``edits`` through :class:`moltir.openclaw.configfile.ConfigFile` (comments kept, ``$include`` aware,
    pre-image saved to the case first, refused if the file changed meanwhile). True if it changed.

    A config that will hold a plaintext token is made 0600 (OpenClaw's own default)."""
    from moltir.openclaw.configfile import ConfigFile

    config = ConfigFile.load(ctx.install)
    results = config.write(config.plan_edits(edits), case=ctx.case)
    if config.validation is not None:
        ctx.event("token.config_validated", ok=config.validation.ok, how=config.validation.how,
                  ms=config.validation.ms)
        ctx.shared[VALIDATION_KEY] = (config.validation.describe(), config.validation_warning())
    token = edits.get(("gateway", "auth", "token"))
    if isinstance(token, str):
        for r in results:
            with contextlib.suppress(OSError):
                if r.path.stat().st_mode & 0o077:
                    os.chmod(r.path, 0o600)
    return bool(results)


def plan_diff(install: Install, edits: Mapping[tuple[str, ...], Any]) -> str:
    from moltir.openclaw.configfile import ConfigFile

    return "".join(fe.diff for fe in ConfigFile.load(install).plan_edits(edits))


# ---- the part of a rotation done during the gateway's drain ------------------------------------

PREPARED_KEY = "token.prepared"  # ctx.shared: a _Prepared from Rotate.prepare, taken by Rotate.apply


@dataclass(frozen=True)
class _Prepared:
    new: str = field(repr=False)
    new_fp: str
    staging: str
    info: keystore.BackendInfo
    command: str
    boot: keystore.BootCheck


# ---- results kept in memory for a rollback ------------------------------------------------------

@dataclass
class Rollback:
    """What putting the previous token back needs. Lives in ``ctx.shared`` only (holds secrets)."""

    mode: str
    entry: str
    old_token: str | None = field(repr=False)
    old_keyring_value: str | None = field(repr=False)
    previous_auth_token: Any = field(repr=False)
    previous_auth_mode: Any
    previous_provider: Any
    port: int
    gateway_pids: list[int]
    previous_password: Any = field(default=None, repr=False)
    command: str = ""
    backend: str = ""


ROLLBACK_MIN_WAIT_S = 60.0  # how long the previous token may take to be accepted again
SETTLE_S = 15.0  # then how long both tokens are watched: a slow reload may still land the new one


def roll_forward_if_late(ctx: StepContext, rb: Rollback, new: str) -> bool:
    """After a rollback, watch the gateway for ``SETTLE_S``: when a reload that was still running lands
    the NEW token after all, put the new token back (keyring, config) and keep it. True if it did."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        if gateway_http.token_status(rb.port, new) == gateway_http.ACCEPTED:
            keystore.store(keystore.SERVICE, rb.entry, new)
            write_config(ctx, target_edits(ctx.install, rb.mode, new, rb.command, rb.backend,
                                           drop_password=rb.previous_password is not None))
            ctx.shared["gateway_token"] = new
            ctx.event("token.rolled_forward", token_fingerprint=fingerprint(new))
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def settle_after_failure(ctx: StepContext, rb: Rollback | None, new: str | None, what: str) -> NoReturn:
    """The gateway did not take the new token in time: roll back, or forward if it takes it late.

    (1) Put the previous token back (keyring, config) and re-apply; (2) watch both tokens for
    ``SETTLE_S``: a reload that was still running (and may swallow the rollback's trigger) can land
    the NEW token after all, and then the new token is put back and kept (rolled forward), so the
    keyring always holds the token the gateway accepts; (3) if it accepts neither, the previous
    token stays on record and the message says to restart the gateway."""
    ctx.shared.pop("gateway_token", None)
    ctx.shared[SETTLED_KEY] = True
    if rb is None:
        raise MoltirError(f"{what}, and there is nothing to roll back to", hint="restart the gateway; the "
                          "keyring holds the token to use", exit_code=EXIT_STEP_FAILED)
    ok, how = rollback(ctx, rb, timeout_s=ROLLBACK_MIN_WAIT_S, new_token=new)
    if new is not None and roll_forward_if_late(ctx, rb, new):
        raise verify_error(f"{what}; it took the new token {fingerprint(new)} late, after the rollback "
                           "had started, so the new token was kept (rolled forward)",
                           "check the gateway's log for slow reloads")
    if ok and rb.old_token is not None:
        ok = gateway_http.token_status(rb.port, rb.old_token) == gateway_http.ACCEPTED
    if ok:
        raise verify_error(f"{what}; {how}", "see the gateway's log for why it did not take the new token")
    raise MoltirError(f"{what}, and {how}", hint="restart the gateway: the keyring and the config hold the "
                      "previous token again", exit_code=EXIT_STEP_FAILED)


def reload_route(install: Install, mode: str, config: Mapping[str, Any]) -> tuple[str, str | None]:
    """(route, signal) by which a RUNNING gateway of this release takes a rotated token.

    keyring-ref: the config text does not change after the first switch, so only an in-process
    restart re-resolves the SecretRef: the release's restart signal (SIGUSR1 up to 2026.9.5, SIGUSR2
    from 2026.9.6; capability table). Never a signal the release does not handle: Node's default
    action for an unhandled SIGUSR2 is to terminate the process. plaintext: the config file watcher
    (hot-applies or restarts in-process on ``gateway.*``), unless ``gateway.reload.mode`` is "off";
    then the restart signal when the release honours one from another process. ``("restart", None)``
    when neither exists: the gateway is restarted the way it runs (its service manager, or the
    command recorded from the running process), see :func:`moltir.actions.gateway.restart_running`."""
    sig = install.caps.restart_signal(config)
    if mode == "keyring-ref":
        return (sig, sig) if sig else ("restart", None)
    reload_mode = _get(config, "gateway", "reload", "mode")
    if reload_mode != "off":
        return "config file watch", None
    return (sig, sig) if sig else ("restart", None)


def _reapply(ctx: StepContext, route: str, sig: str | None, pids: list[int], token: str | None,
             timeout_s: float) -> str:
    """Make the running gateway take what the keyring and the config hold now, by ``route``."""
    if route == "restart":
        from moltir.actions.gateway import restart_running

        return restart_running(ctx, token, timeout_s)
    sent = _signal_gateways(pids, sig)
    if sig is not None:
        ctx.event("token.signalled", signal=sig, pids=sent)
    return route


def _signal_gateways(pids: list[int], sig: str | None) -> list[int]:
    if sig is None:
        return []
    signum = signal.Signals[sig]
    sent = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            sent.append(pid)
    return sent


def rollback(ctx: StepContext, rb: Rollback, *, timeout_s: float, new_token: str | None = None) -> tuple[bool, str]:
    """Put the previous token back (keyring, config), re-apply, and check the gateway takes it.

    When moltir never knew the previous value (a ``store``/``env`` SecretRef), the previous
    config is put back and success means the gateway stopped accepting the new token."""
    prev_is_ref = isinstance(rb.previous_auth_token, Mapping) or (
        isinstance(rb.previous_auth_token, str) and rb.previous_auth_token.startswith("$"))
    if rb.old_token is None and not prev_is_ref:
        return False, "the previous token is not known to moltir, so it cannot be put back"
    if rb.old_keyring_value is not None:
        keystore.store(keystore.SERVICE, rb.entry, rb.old_keyring_value)
    elif rb.old_token is not None:
        keystore.store(keystore.SERVICE, rb.entry, rb.old_token)
    else:
        keystore.delete(keystore.SERVICE, rb.entry)
    edits: dict[tuple[str, ...], Any] = {
        ("gateway", "auth", "token"): rb.previous_auth_token if rb.previous_auth_token is not None
        else json5edit.DELETE,
        ("gateway", "auth", "mode"): rb.previous_auth_mode if rb.previous_auth_mode is not None
        else json5edit.DELETE,
    }
    if rb.previous_password is not None:
        edits[("gateway", "auth", "password")] = rb.previous_password
    if rb.mode == "keyring-ref":
        edits[("secrets", "providers", keystore.PROVIDER_ALIAS)] = (
            rb.previous_provider if rb.previous_provider is not None else json5edit.DELETE)
    write_config(ctx, edits)
    route, sig = reload_route(ctx.install, rb.mode, ctx.install.read_config())
    if route == "restart" or prev_is_ref or rb.mode == "keyring-ref":
        try:
            _reapply(ctx, route, sig, rb.gateway_pids, rb.old_token, timeout_s)
        except MoltirError as exc:
            return False, f"rollback could not restart the gateway: {exc.message}"
    if rb.old_token is None:
        deadline = time.monotonic() + timeout_s
        status = gateway_http.token_status(rb.port, new_token) if new_token else gateway_http.DOWN
        while new_token and status != gateway_http.REFUSED and time.monotonic() < deadline:
            time.sleep(0.2)
            status = gateway_http.token_status(rb.port, new_token)
        ctx.event("token.rolled_back", accepted=None, new_token_status=status)
        if status == gateway_http.REFUSED:
            return True, ("rolled back to the previous SecretRef (its token is not known to moltir, so "
                          "check that your clients still get in)")
        return False, f"rollback did not take: the new token gets HTTP {status or 'no answer'}"
    status = gateway_http.wait_accepted(rb.port, rb.old_token, timeout_s=timeout_s)
    ctx.event("token.rolled_back", accepted=status == gateway_http.ACCEPTED, status=status,
              token_fingerprint=fingerprint(rb.old_token))
    if status == gateway_http.ACCEPTED:
        return True, f"rolled back: the gateway accepts the previous token {fingerprint(rb.old_token)} again"
    return False, f"rollback did not take: the previous token gets HTTP {status or 'no answer'}"


# ---- paired devices ---------------------------------------------------------------------------

def list_devices(install: Install, token: str) -> tuple[list[dict[str, Any]], str]:
    """Paired devices (id, roles, platform, client): from devices/paired.json where the release keeps
    devices in files (up to 2026.7.x), else (SQLite, 2026.8.1 on) through the CLI."""
    paired = install.state_dir / "devices" / "paired.json"
    files = install.caps.state_store == "files"
    if files and not paired.is_file():
        # Never ask the CLI of a file-store release: its first connect from loopback is auto-paired
        # ("device pairing auto-approved" is in every release's dist), so listing the devices would MINT
        # a paired device whose token survives every rotation (openclaw-old-run.md §5).
        return [], f"{paired} (absent: no paired device)"
    if files:
        try:
            data = json.loads(paired.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [], f"cannot read {paired}: {exc}"
        items = list(data.values()) if isinstance(data, dict) else []
        source = str(paired)
    else:
        if install.binary is None:
            return [], "openclaw binary not found"
        try:
            proc = install.run_cli("devices", "list", "--json", timeout_s=90,
                                   extra_env={"OPENCLAW_GATEWAY_TOKEN": token})
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [], f"openclaw devices list failed: {exc}"
        out = proc.stdout.decode("utf-8", "replace")
        try:
            data = json.loads(out[out.index("{"):])
        except ValueError:
            return [], f"openclaw devices list failed (rc {proc.returncode})"
        items = data.get("paired", []) if isinstance(data, dict) else []
        source = "openclaw devices list"
    devices = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        roles = item.get("roles") or ([item["role"]] if item.get("role") else [])
        raw_tokens = item.get("tokens")
        tokens: Mapping[str, Any] = raw_tokens if isinstance(raw_tokens, Mapping) else {}
        live_roles = [r for r in roles
                      if not (isinstance(tokens.get(r), Mapping) and tokens[r].get("revokedAtMs"))]
        devices.append({"id": str(item.get("deviceId") or item.get("id") or "?"), "roles": list(roles),
                        "active_roles": live_roles, "platform": item.get("platform"),
                        "client": item.get("clientId")})
    return devices, source


def revoke_devices(install: Install, token: str, devices: list[dict[str, Any]]) -> list[dict[str, Any]]:

    results = []
    for dev in devices:
        for role in dev.get("active_roles") or dev.get("roles") or ["operator"]:
            try:
                proc = install.run_cli("devices", "revoke", "--device", dev["id"], "--role", role, "--json",
                                       timeout_s=90, extra_env={"OPENCLAW_GATEWAY_TOKEN": token})
                ok = proc.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
            results.append({"id": dev["id"], "role": role, "revoked": ok})
    return results


# ---- token.rotate ---------------------------------------------------------------------------

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

    # ---- plan -----------------------------------------------------------------------------
    def plan(self, ctx: StepContext) -> Plan:
        install = ctx.install
        mode = resolve_mode(install, str(ctx.params["mode"]))
        config = install.read_config()
        _read_text(install.config_path)
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
        kind, value = keystore.token_source(config)
        before = ("plaintext token " + fingerprint(value) if kind == "plaintext" and isinstance(value, str)
                  else json.dumps(value) if kind == "ref" else kind)
        after = "exec SecretRef -> keyring" if mode == "keyring-ref" else "new plaintext token (0600 config)"
        changes.append(Change("config", "gateway.auth.token", before=before, after=after))
        if mode == "keyring-ref":
            changes.append(Change("file", command, after="moltir-secret launcher (0700)"))
            changes.append(Change("config", f"secrets.providers.{keystore.PROVIDER_ALIAS}",
                                  before="present" if _get(config, "secrets", "providers", keystore.PROVIDER_ALIAS)
                                  else "absent", after=f"exec {command}"))
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
                                                         drop_password="password" in _auth(cfg.data))))

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
        ctx.shared[PREPARED_KEY] = _Prepared(new, new_fp, staging, info, command, boot)

        def undo() -> None:
            if ctx.shared.pop(PREPARED_KEY, None) is not None:
                keystore.delete(keystore.SERVICE, staging)

        return undo

    # ---- preflight ------------------------------------------------------------------------
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
            raise env_error("the gateway is not running", "start it first: this step proves the rotation on the "
                                                          "running gateway")
        info = keystore.preflight_for(install, options.allow_insecure_keyring)
        if gateways and mode == "keyring-ref":
            keystore.boot_preflight(install, info.name, gateways[0].pid)

    # ---- apply ----------------------------------------------------------------------------
    def apply(self, ctx: StepContext) -> StepResult:
        install = ctx.install
        mode = resolve_mode(install, str(ctx.params["mode"]))
        config = install.read_config()
        _read_text(install.config_path)  # exists and readable, before anything changes
        gateways = find_gateways(install)
        if ctx.params["require_running"] and not gateways:
            raise env_error("the gateway is not running", "start it first: this step proves the rotation on the "
                                                          "running gateway")
        entry = keystore.entry_name(install)
        staging = entry + STAGING_SUFFIX
        prepared = ctx.shared.pop(PREPARED_KEY, None)
        if not (isinstance(prepared, _Prepared) and prepared.staging == staging and mode == "keyring-ref"
                and not gateways):
            if isinstance(prepared, _Prepared):  # not for this situation: start afresh
                keystore.delete(keystore.SERVICE, prepared.staging)
            prepared = None
        # prepared moments ago in the drain: the keyring took a write then, no second probe needed
        info = prepared.info if prepared else keystore.preflight_for(install, ctx.options.allow_insecure_keyring)
        ctx.event("token.keyring_ready", backend=info.name, insecure=info.insecure)

        old, old_source = old_token(install, config, gateways)
        register(old)
        password = _get(config, "gateway", "auth", "password")
        register(password if isinstance(password, str) else None)
        previous_keyring = keystore.read(keystore.SERVICE, entry)
        if prepared is not None:
            new, new_fp = prepared.new, prepared.new_fp
        else:
            new = pysecrets.token_hex(32)
            register(new)
            new_fp = keystore.store(keystore.SERVICE, staging, new)
        ctx.event("token.generated", new_fingerprint=new_fp, old_fingerprint=fingerprint(old) if old else None,
                  old_source=old_source, prepared=prepared is not None)
        warnings: list[str] = []
        details: dict[str, Any] = {"mode": mode, "backend": info.name, "keyring_entry": f"{keystore.SERVICE}/{entry}",
                                   "new_fingerprint": new_fp,
                                   "old_fingerprint": fingerprint(old) if old else None, "old_source": old_source}
        if info.insecure:
            warnings.append(f"the keyring backend {info.describe()} keeps the token in a plaintext file")
        command = ""
        try:
            if mode == "keyring-ref":
                if prepared is not None:
                    command, boot = prepared.command, prepared.boot
                else:
                    command = str(keystore.install_helper_wrapper(install.env))
                    pid = gateways[0].pid if gateways else None
                    boot = keystore.boot_check(install, command, ["--backend", info.name], expected=new, pid=pid,
                                               entry=staging)
                ctx.event("token.boot_check", ok=boot.ok, source=boot.source, detail=boot.detail)
                details["boot_check"] = {"ok": boot.ok, "source": boot.source, "detail": boot.detail}
                if not boot.ok:
                    raise keystore.boot_refusal(boot)
                if boot.source.startswith("this shell"):
                    warnings.append("the gateway is not running and no service unit was found: the helper was "
                                    "checked in this shell's environment; start the gateway from an environment "
                                    "with the same D-Bus session and an unlocked keyring")
            auth = _auth(config)
            kind, value = keystore.token_source(config)
            backups = config_backups(install)
            ctx.case.record_restore("token", {
                "config_path": str(install.config_path),
                "mode": mode,
                "keyring": {"service": keystore.SERVICE, "entry": entry, "backend": info.name},
                "previous": {
                    "auth_mode": auth.get("mode"),
                    "token_kind": kind,
                    "token_ref": value if kind == "ref" else None,
                    "token_fingerprint": fingerprint(old) if old else None,
                    "token_source": old_source,
                    "password_set": "password" in auth,
                    "provider": _get(config, "secrets", "providers", keystore.PROVIDER_ALIAS),
                    "keyring_fingerprint": fingerprint(previous_keyring) if previous_keyring else None,
                },
                "new_fingerprint": new_fp,
                "preimage": f"preimage/{install.config_path.name}",
                "backups": [b.name for b in backups],
                "note": "restore does not bring back the previous token (it may be compromised); "
                        "the previous config bytes are in preimage/ as evidence",
            })
            keystore.store(keystore.SERVICE, entry, new)
        finally:
            keystore.delete(keystore.SERVICE, staging)

        try:
            changed = write_config(ctx, target_edits(install, mode, new, command, info.name,
                                                     drop_password="password" in auth))
        except MoltirError:
            # nothing points at the new token yet: put the keyring back the way it was
            if previous_keyring is not None:
                keystore.store(keystore.SERVICE, entry, previous_keyring)
            else:
                keystore.delete(keystore.SERVICE, entry)
            raise
        ctx.event("token.config_written", changed=changed, mode=mode, config=str(install.config_path))
        validated = ctx.shared.pop(VALIDATION_KEY, None)
        if validated is not None:
            details["validated"] = validated[0]
            if validated[1]:
                warnings.append(validated[1])
        if old and kind != "plaintext" and ctx.case.info.get("kind") != "drill" and _keep_previous(ctx, entry, old):
            with contextlib.suppress(MoltirError):
                keystore.store(keystore.SERVICE, entry + PREVIOUS_SUFFIX, old)
                ctx.event("token.previous_kept", entry=f"{keystore.SERVICE}/{entry}{PREVIOUS_SUFFIX}",
                          token_fingerprint=fingerprint(old))
        ctx.shared["gateway_token"] = new
        ctx.shared["old_gateway_token"] = old
        port = gateway_port(install, gateways, config)
        ctx.shared[ROLLBACK_KEY] = Rollback(mode, entry, old, previous_keyring,
                                            _get(config, "gateway", "auth", "token"), auth.get("mode"),
                                            _get(config, "secrets", "providers", keystore.PROVIDER_ALIAS),
                                            port, [g.pid for g in gateways], auth.get("password"), command,
                                            info.name)

        try:
            details["backups"] = self._neutralise_backups(ctx, mode, new, command, info.name, old)
            if auth.get("mode") not in (None, "token"):
                warnings.append(f"gateway.auth.mode was {auth.get('mode')!r} and is now 'token': clients that used "
                                "the old credential must use the token from the keyring")
            warnings += self._leaks(ctx, config, old, new, gateways)
            if info.name == keystore.SYSTEM_NO_KEYRING:
                warnings.append(f"system install: {install.keyring_unreachable}, and this account has no usable "
                                f"keyring: the new token is only in the 0600 config {install.config_path}"
                                + (" (read it with sudo)" if install.run_as is not None else ""))
            elif mode == "plaintext":
                warnings.append(f"{install.product} {install.version or '(release unknown)'} does not take a "
                                f"SecretRef for the gateway token: the token is in the 0600 config "
                                f"{install.config_path}; the keyring copy ({keystore.SERVICE}/{entry}) is the record")

            summary = f"new token {new_fp} in the keyring ({info.label})"
            summary += "; gateway reads it from the keyring" if mode == "keyring-ref" else "; copied into the config"
            if not gateways:
                details["applied"] = None
                summary += "; gateway not running: it takes the new token at its next start"
            elif ctx.params["apply"] == "none":
                details["applied"] = None
                summary += "; not applied to the running gateway (apply: none)"
            else:
                applied = self._apply_running(ctx, mode, new, port, gateways, details, config)
                if not applied:
                    self._apply_failed(ctx, details)
                summary += f"; running gateway took it via {details['route']} in {details['apply_ms']} ms"
                details["devices"] = self._devices(ctx, new, warnings)
            return StepResult("done", summary, details, tuple(warnings))
        except BaseException as exc:
            self._rollback_after_error(ctx, exc)
            raise

    def _apply_running(self, ctx: StepContext, mode: str, new: str, port: int, gateways: list[Any],
                       details: dict[str, Any], config: Mapping[str, Any]) -> bool:
        started = time.monotonic()
        route, sig = reload_route(ctx.install, mode, config)
        details["route"] = route
        details["route_source"] = ctx.install.caps.answer("restart_signal").source
        ctx.shared[SIGNALLED_KEY] = True  # signalled, restarted, or the watcher has seen the new config
        how = _reapply(ctx, route, sig, [g.pid for g in gateways], new, float(ctx.params["timeout_s"]))
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

    def _neutralise_backups(self, ctx: StepContext, mode: str, new: str, command: str, backend: str,
                            old: str | None) -> list[dict[str, str]]:
        out = []
        edits = target_edits(ctx.install, mode, new, command, backend, drop_password=True)
        for path in config_backups(ctx.install):
            try:
                raw = path.read_bytes()
            except OSError:
                continue
            ctx.case.write_file(f"preimage/backups/{path.name}", raw)
            text = raw.decode("utf-8", errors="replace")
            action = "rewritten"
            try:
                edited = json5edit.set_values(text, edits, source=str(path))
                if auth_holds(json5edit.parse(edited, source=str(path)).value, old):
                    raise ValueError("the old token is still the gateway's credential")
                st = path.stat()
                atomic_write(path, edited.encode("utf-8"), mode=0o600, owner=(st.st_uid, st.st_gid))
            except (MoltirError, ValueError):
                action = "removed"
                try:
                    path.unlink()
                except OSError as exc:
                    raise os_error(exc, f"removing {path}") from None
            ctx.event("token.backup_neutralised", file=str(path), action=action)
            out.append({"file": path.name, "action": action})
        return out

    def _leaks(self, ctx: StepContext, config: Mapping[str, Any], old: str | None, new: str,
               gateways: list[Any]) -> list[str]:
        install = ctx.install
        warnings: list[str] = []
        env_file = install.state_dir / ".env"
        file_env = read_env_file(env_file)
        for var in ENV_TOKEN_VARS:
            value = file_env.get(var)
            if value is None:
                continue
            register(value)
            if value == new:
                continue
            if ctx.options.clean_env:
                raw = env_file.read_bytes()
                ctx.case.write_file(f"preimage/{env_file.name}", raw)
                kept = [ln for ln in raw.decode("utf-8").splitlines(keepends=True)
                        if not re.match(rf"^\s*(?:export\s+)?{var}\s*=", ln)]
                st = env_file.stat()
                atomic_write(env_file, "".join(kept).encode("utf-8"), mode=st.st_mode & 0o777,
                             owner=(st.st_uid, st.st_gid))
                ctx.event("token.env_cleaned", file=str(env_file), var=var, token_fingerprint=fingerprint(value))
                warnings.append(f"removed {var} ({fingerprint(value)}) from {env_file} (--clean-env)")
            else:
                warnings.append(f"{env_file} sets {var} ({fingerprint(value)}), which differs from the new token: "
                                "it overrides the gateway token where the config has none and leaks the old one; "
                                "rerun with --clean-env to remove it")
        for gw in gateways:
            env = _gateway_env(gw)
            for var in ENV_TOKEN_VARS:
                if env.get(var) and env[var] != new:
                    register(env[var])
                    warnings.append(f"the running gateway (pid {gw.pid}) has {var}={fingerprint(env[var])} in its "
                                    "environment (its service or shell sets it): remove it there")
        svc_dir = install.state_dir / "service-env"
        if svc_dir.is_dir():
            for f in sorted(svc_dir.iterdir()):
                with contextlib.suppress(OSError):
                    if any(v in read_env_file(f) for v in ENV_TOKEN_VARS):
                        warnings.append(f"{f} sets a gateway token for the service: reinstall the service "
                                        "('openclaw gateway install --force') so it no longer carries one")
        previous = _get(config, "gateway", "auth", "token")
        if isinstance(previous, Mapping) and previous.get("source") == "store":
            warnings.append(f"OpenClaw's secret store still holds the previous token as {previous.get('id')} "
                            "(unencrypted, no longer used): remove it with 'openclaw secrets store rm "
                            f"{previous.get('id')} --yes'")
        hooks = _get(config, "hooks", "token")
        if isinstance(hooks, str) and hooks and hooks in (old, new):
            register(hooks)
            warnings.append(f"hooks.token equals the {'old' if hooks == old else 'new'} gateway token "
                            f"({fingerprint(hooks)}): give hooks their own token")
        remote = _get(config, "gateway", "remote", "token")
        if isinstance(remote, str) and remote and old and remote == old:
            warnings.append(f"gateway.remote.token still holds the old token ({fingerprint(old)}): update or "
                            "remove it")
        return warnings

    def _devices(self, ctx: StepContext, token: str, warnings: list[str]) -> dict[str, Any]:
        devices, source = list_devices(ctx.install, token)
        info: dict[str, Any] = {"source": source, "paired": devices}
        active = [d for d in devices if d.get("active_roles")]
        if ctx.options.revoke_devices and active:
            info["revoked"] = revoke_devices(ctx.install, token, active)
            ctx.event("token.devices_revoked", devices=info["revoked"])
        elif active:
            warnings.append(f"{len(active)} paired device(s) keep their own tokens after a shared-token rotation "
                            f"({', '.join(d['id'][:12] for d in active)}): revoke them with --revoke-devices")
        return info

    # ---- verify ---------------------------------------------------------------------------
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
        kind, value = keystore.token_source(config)
        if details.get("mode") == "keyring-ref":
            provider = _get(config, "secrets", "providers", keystore.PROVIDER_ALIAS)
            if kind != "ref" or value != keystore.token_ref(install) or not isinstance(provider, Mapping):
                raise verify_error("the config does not point gateway.auth.token at the keyring",
                                   f"check {install.config_path} (another writer may have changed it)")
        elif kind != "plaintext" or value != stored:
            raise verify_error("the config does not hold the new token", f"check {install.config_path}")
        old = ctx.shared.get("old_gateway_token")
        if isinstance(old, str) and old:
            leftovers = [p.name for p in [install.config_path, *config_backups(install)] if _file_holds(p, old)]
            if leftovers:
                raise verify_error(f"the old token is still in {', '.join(leftovers)}",
                                   "remove it from those files; OpenClaw may restore them")


# ---- token.verify -------------------------------------------------------------------------

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
        back from the case (:func:`_old_token_from_case`)."""
        new = ctx.shared.get("gateway_token")
        old = ctx.shared.get("old_gateway_token")
        if not isinstance(new, str):
            new, _ = keystore.configured_token(ctx.install)
            if new is None:
                new = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install))
        if not isinstance(old, str):
            old = _old_token_from_case(ctx)
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


def _keep_previous(ctx: StepContext, entry: str, old: str) -> bool:
    """Whether to keep ``old`` as ``<entry>:previous``: not when this case's record names another
    previous token and the keyring already holds that one (a second rotation in the same case, e.g.
    a run resumed after a crash mid-rotation, must not replace the token restore has to prove refused)."""
    record = ctx.case.restore_section("token")
    previous = record.get("previous") if isinstance(record, Mapping) else None
    want = previous.get("token_fingerprint") if isinstance(previous, Mapping) else None
    if not want or fingerprint(old) == want:
        return True
    try:
        kept = keystore.read(keystore.SERVICE, entry + PREVIOUS_SUFFIX)
    except MoltirError:
        return True
    return not (kept and fingerprint(kept) == want)


def _old_token_from_case(ctx: StepContext) -> str | None:
    """The previous token, for a later run (restore) to prove it refused.

    The case keeps the config's pre-incident bytes in ``preimage/`` as evidence; when the
    previous token was a plaintext ``gateway.auth.token`` there, it is read back from them, and
    used only if its fingerprint is the one token.rotate recorded.
    """
    record = ctx.case.restore_section("token")
    if not isinstance(record, Mapping):
        return None
    previous = record.get("previous")
    want = previous.get("token_fingerprint") if isinstance(previous, Mapping) else None
    rel = record.get("preimage")
    if not want:
        return None
    value: Any = None
    if isinstance(rel, str):
        try:
            text = (ctx.case.dir / rel).read_text(encoding="utf-8-sig")
            from moltir.openclaw import parse_config_text

            value = _get(parse_config_text(text, ctx.case.dir / rel), "gateway", "auth", "token")
        except (OSError, MoltirError):
            value = None
    if isinstance(value, str) and value and fingerprint(value) == want:
        register(value)
        return value
    # the previous token lived in the keyring (an earlier drill) or the environment: token.rotate kept it
    # in the keyring as <entry>:previous
    with contextlib.suppress(MoltirError):
        kept = keystore.read(keystore.SERVICE, keystore.entry_name(ctx.install) + PREVIOUS_SUFFIX)
        if kept and fingerprint(kept) == want:
            ctx.shared[PREVIOUS_SUFFIX] = kept
            return kept
    return None
