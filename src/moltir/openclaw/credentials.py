"""Every credential an install holds: where it lives, how it is stored, and (in memory only) its value.

Sources: the config (``$include`` resolved; the file that owns each key from
:meth:`ConfigFile.owner_of`), the state dir's ``.env`` and ``~/.config/openclaw/gateway.env`` (the
gateway's dotenv files, openclaw-facts.md §4), the agents' ``models.json``, ``auth-profiles.json`` and
``auth.json``, the paired devices' tokens (``devices/paired.json``, file-store releases up to 2026.7.x),
the gateway's own device identity (``identity/*.json``), WhatsApp session folders
(``credentials/whatsapp/<account>/creds.json``) and the ``Environment=`` / ``EnvironmentFile=`` lines of
the install's systemd user units. What counts is :mod:`moltir.openclaw.credential_table`.

A :class:`Credential` holds its value in memory only (``repr=False``); nothing here logs or writes one.
Values found are registered for redaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moltir.errors import MoltirError
from moltir.openclaw import credential_table as table
from moltir.openclaw.gateway_auth import read_env_file
from moltir.redaction import register

if TYPE_CHECKING:
    from moltir.openclaw.install import Install

Storage = Literal["plaintext", "secretref", "env", "file"]


@dataclass(frozen=True)
class Credential:
    id: str  # stable: channels.telegram.accounts.ops.botToken, dotenv.OPENAI_API_KEY, ...
    kind: str
    provider: str
    file: str  # where it lives
    key: str  # key path in that file, variable name, or row
    storage: Storage
    value: str | None = field(default=None, repr=False, compare=False)  # in memory only
    ref: str | None = None  # a SecretRef or variable it points at ("env:default:OPENAI_API_KEY")
    note: str = ""

    def describe(self) -> dict[str, Any]:
        """Everything but the value."""
        return {"id": self.id, "kind": self.kind, "provider": self.provider,
                "location": {"file": self.file, "key": self.key}, "storage": self.storage, "ref": self.ref,
                "resolved": self.value is not None, "note": self.note or None,
                "revocation": table.revocation(self.provider, self.kind)}


@dataclass(frozen=True)
class Found:
    path: tuple[str, ...]
    value: Any  # str, or a SecretRef mapping
    from_file: bool = False  # a ``tokenFile``-style key: value is a path


def walk(data: Any, path: tuple[str, ...] = (), store: bool = False) -> Iterator[Found]:
    """Every credential-looking key under ``data`` (``store``: also auth-store names like ``key``)."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            key = str(k)
            if (not path and key in table.SKIP_TOP) or key == "$include":
                continue
            here = (*path, key)
            if table.SECRET_FILE_KEY_RE.match(key) and isinstance(v, str) and v:
                yield Found(here, v, from_file=True)
            elif _secretish(key, store) and ((isinstance(v, str) and v) or _is_ref(v)):
                yield Found(here, v)
            else:
                yield from walk(v, here, store)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from walk(v, (*path, str(i)), store)


def _secretish(key: str, store: bool) -> bool:
    return bool(table.SECRET_KEY_RE.search(key)) or (store and key in table.STORE_SECRET_KEYS)


def _is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and "source" in value and "id" in value


def _env_lookup(var: str, env: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    return env.get(var) or dotenv.get(var) or None


def from_found(f: Found, *, file: str, key_path: str, env: Mapping[str, str], dotenv: Mapping[str, str],
               id_prefix: str = "", hint: str = "") -> Credential:
    """A :class:`Credential` for one found key: the value resolved where moltir can (plaintext, ``${VAR}``,
    an ``env`` SecretRef, a ``tokenFile``)."""
    dotted = ".".join(f.path)
    key = f.path[-1]
    base_key = key[:-4] if f.from_file else key
    cid = id_prefix + dotted
    kind, provider = table.kind_of(dotted, base_key), table.provider_of(dotted, base_key, hint)
    value: str | None = None
    ref: str | None = None
    storage: Storage = "plaintext"
    if f.from_file:
        storage, ref = "file", str(f.value)
        value = _read_secret_file(Path(str(f.value)).expanduser())
    elif isinstance(f.value, Mapping):
        storage = "secretref"
        ref = f"{f.value.get('source')}:{f.value.get('provider', 'default')}:{f.value.get('id')}"
        if provider == "unknown" or provider.startswith("model:"):  # the variable may name it: OPENAI_API_KEY
            provider = table.env_provider(str(f.value.get("id"))) or provider
        if f.value.get("source") == "env":
            value = _env_lookup(str(f.value.get("id")), env, dotenv)
    elif isinstance(f.value, str) and f.value.startswith("${") and f.value.endswith("}"):
        storage, ref = "env", f.value[2:-1]
        value = _env_lookup(ref, env, dotenv)
    else:
        value = str(f.value)
    register(value)
    return Credential(cid, kind, provider, file, key_path, storage, value, ref)


MAX_SECRET_FILE = 1 << 20


def _small_file(path: Path, limit: int = MAX_SECRET_FILE) -> bool:
    """A regular file (not a FIFO or device a config or unit may name) of at most ``limit`` bytes."""
    try:
        return path.is_file() and path.stat().st_size <= limit
    except OSError:
        return False


def _read_secret_file(path: Path) -> str | None:
    """A ``tokenFile``'s value: only a regular file of at most 1 MiB (a config may name ``/dev/zero`` or a
    FIFO), without surrounding whitespace (a trailing newline is no part of a token)."""
    if not _small_file(path):
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def _provider_hint(config: Mapping[str, Any], path: tuple[str, ...]) -> str:
    if len(path) > 2 and path[0] == "models" and path[1] == "providers":
        providers = config.get("models", {}).get("providers", {})
        entry = providers.get(path[2]) if isinstance(providers, Mapping) else None
        if isinstance(entry, Mapping):
            return str(entry.get("baseUrl") or "")
    return ""


def from_config(config: Mapping[str, Any], *, owner: Any, env: Mapping[str, str],
                dotenv: Mapping[str, str]) -> list[Credential]:
    """The config's credentials. ``owner(path) -> (file, key path in it)``."""
    out = []
    for f in walk(config):
        file, inner = owner(f.path)
        out.append(from_found(f, file=file, key_path=inner, env=env, dotenv=dotenv,
                              hint=_provider_hint(config, f.path)))
    return out


def config_credentials(install: Install, dotenv: Mapping[str, str]) -> list[Credential]:
    from moltir.openclaw.configfile import ConfigFile

    if not install.config_path.is_file():
        return []
    try:
        cfg = ConfigFile.load(install)
        data: Mapping[str, Any] = cfg.data
    except MoltirError:
        cfg, data = None, install.read_config()

    def owner(path: tuple[str, ...]) -> tuple[str, str]:
        if cfg is not None:
            try:
                file, inner = cfg.owner_of(path, for_write=False)
                return str(file), ".".join(inner)
            except MoltirError:
                pass
        return str(install.config_path), ".".join(path)

    return from_config(data, owner=owner, env=install.env, dotenv=dotenv)


def dotenv_credentials(path: Path, prefix: str) -> list[Credential]:
    """The secret-named variables of a dotenv file (``OPENAI_API_KEY=...``)."""
    if not _small_file(path):
        return []
    try:
        values = read_env_file(path)
    except MoltirError:
        return []
    out = []
    for var, value in values.items():
        if value and table.SECRET_KEY_RE.search(var):
            register(value)
            out.append(Credential(f"{prefix}.{var}", table.kind_of(f"env.{var}", var),
                                  table.provider_of(f"env.{var}", var), str(path), var, "plaintext", value))
    return out


def json_store_credentials(path: Path, prefix: str, *, store: bool = True,
                           device: bool = False) -> list[Credential]:
    """The credentials of a JSON store (models.json, auth-profiles.json; ``device``: paired.json, identity)."""
    if not _small_file(path, 64 << 20):
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    for f in walk(data, store=store):
        c = from_found(f, file=str(path), key_path=".".join(f.path), env={}, dotenv={}, id_prefix=prefix)
        if device:
            kind = "device_private_key" if "private" in c.key.lower() else "device_token"
            c = Credential(c.id, kind, "openclaw", c.file, c.key, c.storage, c.value, c.ref)
        elif c.provider == "unknown":
            c = Credential(c.id, c.kind, _store_provider(data, f.path), c.file, c.key, c.storage, c.value, c.ref)
        out.append(c)
    return out


def _store_provider(data: Any, path: tuple[str, ...]) -> str:
    """auth-profiles.json ``profiles.<id>.provider`` / models.json ``providers.<id>``."""
    node = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, Mapping) and isinstance(node.get("provider"), str):
        return str(node["provider"])
    if len(path) > 1 and path[0] == "providers":
        return table.provider_of(f"models.providers.{path[1]}", path[-1])
    return "unknown"


def state_credentials(install: Install) -> list[Credential]:
    """Credentials in the state dir's files (everything but the config)."""
    state = install.state_dir
    out: list[Credential] = []
    for agent_dir in sorted(state.glob("agents/*/agent")):
        agent = agent_dir.parent.name
        for name in ("models.json", "auth-profiles.json", "auth.json"):
            out += json_store_credentials(agent_dir / name, f"agents.{agent}.{name.removesuffix('.json')}.")
    out += json_store_credentials(state / "devices" / "paired.json", "devices.paired.", device=True)
    for ident in sorted(state.glob("identity/*.json")):
        out += json_store_credentials(ident, f"identity.{ident.stem}.", device=True)
    for creds in sorted(state.glob("credentials/whatsapp/*/creds.json")):
        out.append(_whatsapp_session(creds))
    return out + exec_approval_credentials(install)


def exec_approval_credentials(install: Install) -> list[Credential]:
    """The exec-approvals socket token (``socket.token``): ``~/.openclaw/exec-approvals.json`` (hard-coded up
    to 2026.6.5, whatever the state dir: 2026.1.29 dist/infra/exec-approvals.js) and
    ``<state>/exec-approvals.json`` (2026.6.6 to 2026.7.x); from 2026.8.1 the SQLite store's
    ``exec_approvals_config`` row (:mod:`moltir.openclaw.credential_sqlite`)."""
    out: list[Credential] = []
    seen: set[str] = set()
    for cid, path in (("exec_approvals.socket.token", install.home / ".openclaw" / "exec-approvals.json"),
                      ("exec_approvals.state.socket.token", install.state_dir / "exec-approvals.json")):
        real = os.path.realpath(path)
        if real in seen or not _small_file(path):
            continue
        seen.add(real)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        sock = data.get("socket") if isinstance(data, dict) else None
        value = sock.get("token") if isinstance(sock, dict) else None
        if isinstance(value, str) and value.strip():
            register(value.strip())
            out.append(Credential(cid, "exec_approval_token", "openclaw", str(path), "socket.token", "plaintext",
                                  value.strip()))
    return out


def _whatsapp_session(creds: Path) -> Credential:
    """A WhatsApp Web session folder: the whole creds.json is the credential (relink to revoke)."""
    value = _read_secret_file(creds)
    account = creds.parent.name
    return Credential(f"channels.whatsapp.accounts.{account}.session", "whatsapp_session", "whatsapp",
                      str(creds.parent), "creds.json", "file", value, note="session folder (not matched in "
                      "evidence: a whole file, not a token)")


def inventory(install: Install, notes: list[str] | None = None) -> list[Credential]:
    """Every credential of the install, config first; what could not be read goes to ``notes``.

    Each source is read on its own: a folder moltir may not enter (a gateway once run as root leaves
    root-owned 0700 folders in the state dir) costs that source, named in ``notes``, not the inventory
    -- and not a ``contain``, whose ``credentials`` step runs this."""
    from moltir.openclaw.credential_sqlite import sqlite_credentials
    from moltir.openclaw.unit_env import process_credentials, service_env_credentials, unit_credentials

    notes = notes if notes is not None else []
    dotenv_path = install.state_dir / ".env"
    try:
        dotenv = read_env_file(dotenv_path) if _small_file(dotenv_path) else {}
    except MoltirError:
        dotenv = {}
    xdg = Path(install.env.get("XDG_CONFIG_HOME") or install.home / ".config") / "openclaw" / "gateway.env"
    sources: list[tuple[str, Callable[[], list[Credential]]]] = [
        ("the config", lambda: config_credentials(install, dotenv)),
        (str(dotenv_path), lambda: dotenv_credentials(dotenv_path, "dotenv")),
    ]
    if os.path.realpath(xdg) != os.path.realpath(dotenv_path):
        sources.append((str(xdg), lambda: dotenv_credentials(xdg, "gateway-env")))
    sources += [("the state dir's files", lambda: state_credentials(install)),
                ("the SQLite stores", lambda: sqlite_credentials(install.state_dir, notes)),
                ("the service unit", lambda: unit_credentials(install)),
                ("service-env/", lambda: service_env_credentials(install)),
                ("the running gateway's environment", lambda: process_credentials(install))]
    out: list[Credential] = []
    for what, read in sources:
        try:
            out += read()
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            notes.append(f"not read, {what}: {exc.strerror or type(exc).__name__}{where}")
    return _resolve_store_refs(out)


def _resolve_store_refs(found: list[Credential]) -> list[Credential]:
    """A ``store`` SecretRef (``{source: "store", id: NAME}``) takes its value from the shared store's
    team-scope entry NAME (docs/reference/secretref-credential-surface.md: store refs "resolve only from
    the Gateway-wide team scope"), so both get the same fingerprint."""
    store = {c.id.rsplit(".", 1)[-1]: c.value for c in found if c.id.startswith("sqlite.state.store.team.")}
    out = []
    for c in found:
        if c.storage == "secretref" and c.value is None and c.ref and c.ref.startswith("store:"):
            name = c.ref.rsplit(":", 1)[-1]
            if store.get(name):
                c = Credential(c.id, c.kind, c.provider, c.file, c.key, c.storage, store[name], c.ref, c.note)
        out.append(c)
    return out


# ---- records (the inventory as written into a case and printed) ----------------------------
CASE_DIR = "evidence/credentials"
CASE_INVENTORY = f"{CASE_DIR}/inventory.json"
CASE_KEY = f"{CASE_DIR}/hmac.key"
SCHEMA = "moltir.credentials/1"


def records(creds: list[Credential], key: bytes) -> list[dict[str, Any]]:
    """Each credential described, with its HMAC-SHA-256 fingerprint under ``key`` (never the value).

    The gateway token also gets the unkeyed 8-digit fingerprint moltir prints for it everywhere else
    (``token_fingerprint`` in the journal), so the two records can be matched."""
    from moltir.redaction import fingerprint, keyed_fingerprint

    out = []
    for c in creds:
        rec = c.describe()
        rec["fingerprint"] = keyed_fingerprint(key, c.value) if c.value else None
        if c.kind == "gateway_token" and c.value:  # the 8 hex digits the journal and console show for it
            rec["journal_fingerprint"] = fingerprint(c.value)
        out.append(rec)
    return out
