"""Credentials in OpenClaw's SQLite stores (2026.8.1 on: state, pairing and auth moved into SQLite).

Tables, from the ``dist/`` of 2026.9.6 and 2026.8.2 (``CREATE TABLE IF NOT EXISTS ...``, the same names in both) and
``docs/gateway/secrets/secret-store-and-egress.md`` ("Store values are not encrypted at rest. They are
stored unencrypted in the shared state SQLite database (``state/openclaw.sqlite``)"):

* ``secret_store_entries(scope_kind, scope_id, name, value, kind, ..., deleted_at_ms)``: the ``store``
  SecretRef source's values;
* ``auth_profile_store(store_key, store_json)``: model auth profiles (``profiles.*.key``/``token``/OAuth);
* ``device_pairing_paired(device_id, ..., tokens_json)``, ``device_auth_tokens(device_id, role, token)``,
  ``gateway_origin_device_tokens(gateway_scope, device_id, role, token)``,
  ``device_bootstrap_tokens(token_key, token, ...)``: paired-device and bootstrap tokens;
* ``device_identities(identity_key, device_id, public_key_pem, private_key_pem, ...)``: the private keys
  of this host's device identities (``identity/device.json``'s ``privateKeyPem`` on file-store releases).

Each database is opened read-only (``mode=ro``); one that cannot be opened (locked, another owner, a
WAL without its shared-memory file) is skipped with a note. A table a release does not have is skipped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from moltir.openclaw import credential_table as table
from moltir.openclaw.credentials import Credential, walk
from moltir.redaction import register

_DEVICE_TABLES = {  # table -> (the columns naming a row, the secret's column, its kind)
    "device_auth_tokens": (("device_id", "role"), "token", "device_token"),
    "gateway_origin_device_tokens": (("gateway_scope", "device_id", "role"), "token", "device_token"),
    "device_bootstrap_tokens": (("token_key",), "token", "device_token"),
    "device_identities": (("identity_key",), "private_key_pem", "device_private_key"),
}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _cred(cid: str, kind: str, provider: str, db: Path, row: str, value: Any) -> Credential | None:
    if not isinstance(value, str) or not value:
        return None
    register(value)
    return Credential(cid, kind, provider, str(db), row, "plaintext", value)


def _store_entries(conn: sqlite3.Connection, db: Path, prefix: str) -> Iterator[Credential | None]:
    rows = conn.execute("SELECT scope_kind, scope_id, name, value FROM secret_store_entries "
                        "WHERE deleted_at_ms IS NULL")
    for scope_kind, scope_id, name, value in rows:
        scope = f"{scope_kind}:{scope_id}" if scope_id else str(scope_kind)
        var = str(name)
        yield _cred(f"{prefix}store.{scope}.{var}", table.kind_of(f"env.{var}", var),
                    table.provider_of(f"env.{var}", var), db,
                    f"secret_store_entries scope={scope} name={var}", value)


def _json_rows(conn: sqlite3.Connection, db: Path, prefix: str, sql: str, what: str,
               device: bool) -> Iterator[Credential | None]:
    for row_key, text in conn.execute(sql):
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue
        for f in walk(data, store=True):
            if f.from_file or not isinstance(f.value, str):
                continue
            dotted = ".".join(f.path)
            provider = "openclaw" if device else _profile_provider(data, f.path)
            kind = "device_token" if device else table.kind_of(dotted, f.path[-1])
            yield _cred(f"{prefix}{what}[{row_key}].{dotted}", kind, provider, db,
                        f"{what} {'device_id' if device else 'store_key'}={row_key} {dotted}", f.value)


def _profile_provider(data: Any, path: tuple[str, ...]) -> str:
    node = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return str(node["provider"]) if isinstance(node, dict) and isinstance(node.get("provider"), str) else "unknown"


def _device_rows(conn: sqlite3.Connection, db: Path, prefix: str, name: str) -> Iterator[Credential | None]:
    cols, secret, kind = _DEVICE_TABLES[name]
    sql = f"SELECT {', '.join(cols)}, {secret} FROM {name}"  # noqa: S608 -- names from the table above
    for row in conn.execute(sql):
        label = " ".join(f"{c}={v}" for c, v in zip(cols, row[:-1], strict=True))
        yield _cred(f"{prefix}{name}[{'/'.join(str(v) for v in row[:-1])}]", kind, "openclaw", db,
                    f"{name} {label}", row[-1])


def _exec_approvals(conn: sqlite3.Connection, db: Path, prefix: str) -> Iterator[Credential | None]:
    """The exec-approvals socket token: ``exec_approvals_config(config_key, raw_json)``, row ``current``
    (2026.9.6 dist/exec-approvals-sqlite-*.mjs), ``raw_json`` the old file's JSON (``socket.token``)."""
    for key, text in conn.execute("SELECT config_key, raw_json FROM exec_approvals_config"):
        try:
            data = json.loads(text)
        except (TypeError, ValueError):
            continue
        sock = data.get("socket") if isinstance(data, dict) else None
        value = sock.get("token") if isinstance(sock, dict) else None
        yield _cred(f"{prefix}exec_approvals_config[{key}].socket.token", "exec_approval_token", "openclaw", db,
                    f"exec_approvals_config config_key={key} socket.token", value)


def db_credentials(db: Path, prefix: str, notes: list[str]) -> list[Credential]:
    """The credentials of one SQLite store, opened read-only."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        notes.append(f"{db}: not read ({exc})")
        return []
    out: list[Credential | None] = []
    with closing(conn):
        try:
            names = _tables(conn)
            if "secret_store_entries" in names:
                out += _store_entries(conn, db, prefix)
            if "auth_profile_store" in names:
                out += _json_rows(conn, db, prefix, "SELECT store_key, store_json FROM auth_profile_store",
                                  "auth_profile_store", device=False)
            if "device_pairing_paired" in names:
                out += _json_rows(conn, db, prefix, "SELECT device_id, tokens_json FROM device_pairing_paired",
                                  "device_pairing_paired", device=True)
            for name in _DEVICE_TABLES:
                if name in names:
                    out += _device_rows(conn, db, prefix, name)
            if "exec_approvals_config" in names:
                out += _exec_approvals(conn, db, prefix)
        except sqlite3.Error as exc:
            notes.append(f"{db}: not read ({exc})")
    return [c for c in out if c is not None]


def sqlite_credentials(state_dir: Path, notes: list[str]) -> list[Credential]:
    """The state dir's shared store and every agent's store."""
    out: list[Credential] = []
    shared = state_dir / "state" / "openclaw.sqlite"
    if shared.is_file():
        out += db_credentials(shared, "sqlite.state.", notes)
    for db in sorted(state_dir.glob("agents/*/agent/*.sqlite")):
        out += db_credentials(db, f"sqlite.agents.{db.parent.parent.name}.", notes)
    return out
