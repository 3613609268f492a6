"""Was the sender of an inbound message allowed? The DM policy in force, read from the case's config.

The config in force during the incident is the one before containment changed it: ``preimage/<config>``
(the exact bytes ``dm_policy.set`` saved before its edit, sealed with the case) when the case has one,
else the copied active config. Its ``$include``s are resolved from the case's copies, by OpenClaw's rules
(:mod:`moltir.openclaw.includes`: literal paths relative to the including file's original place, at
most 10 levels, lists deep-merged, sibling keys over them): an included file is read from its
pre-containment bytes (``preimage/<path relative to the config dir>``) when the policy config is a
preimage and the case has one, else from its copy ``evidence/fs/<absolute path>``. An include that
cannot be resolved that way (not copied, unreadable, not JSON5, circular, too deep) stays unresolved:
messages whose channel, account or per-chat section goes through it get ``null`` for both fields below.

For a message's channel and account (account settings first, then the channel's; Telegram's per-chat
``direct.<chatId>`` override first of all):

* ``dmPolicy`` (or the nested ``dm.policy``), OpenClaw's default ``pairing`` when unset;
* ``allowFrom`` (or ``dm.allowFrom``): ids, optionally prefixed ``<channel>:``; ``*`` is a wildcard, not a
  name;
* senders approved by pairing, from the store the case's release keeps them in (capability
  ``state_store``, for the release ``case.json`` records; both stores when it records none):
  ``files`` (to 2026.7.x): the copied ``credentials/<channel>[-<account>]-allowFrom.json``
  (``{"version": 1, "allowFrom": [...]}``); ``sqlite`` (2026.8.1 on): table
  ``channel_pairing_allow_entries(channel_key, account_id, entry, sort_order, updated_at)`` of the copied
  ``state/openclaw.sqlite`` (2026.8.2 and 2026.9.6 ``dist/``: ``pairing-store-sqlite-*``,
  ``CREATE TABLE IF NOT EXISTS channel_pairing_allow_entries``; ``channel_key`` is the lower-cased channel
  id). A SQLite approval counts for its account only (``account_id``, lower-cased, ``default`` when
  empty), as 2026.9.6 reads it (``readAllowFromState(channel, env, accountId)``); a file approval counts
  for every account of its channel (2026.1.29 keeps one file per channel; the per-account files of later
  file-store releases are not told apart here).

An event gets ``allowlisted`` (an allowlist names the sender: ``true``/``false``, or ``null`` when the
policy is ``pairing``, the config does not name the sender and the case holds no approvals it can read
for the channel: no pairing file on a file-store release, no copied state database with the table on
a SQLite one) and ``allowed`` (the policy admitted the sender: ``open`` admits anyone, ``allowlist``
and ``pairing`` the allowlisted, ``disabled`` nobody).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final

from moltir.evidence.layout import evidence_rel
from moltir.evidence.sqlite_copy import private_copy
from moltir.openclaw.includes import INCLUDE_KEY, include_specs, include_target, merge_included, too_deep
from moltir.openclaw.json5edit import reference_parse
from moltir.triage.events import Event
from moltir.triage.sources import Catalog, SqliteCopy

DEFAULT_POLICY = "pairing"
_FS: Final = "evidence/fs/"


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _policy(section: Mapping[str, Any]) -> str | None:
    value = section.get("dmPolicy", _obj(section.get("dm")).get("policy"))
    return value if isinstance(value, str) else None


def _allow(section: Mapping[str, Any]) -> list[str] | None:
    value = section.get("allowFrom", _obj(section.get("dm")).get("allowFrom"))
    return [str(v) for v in value] if isinstance(value, list) else None


def _norm(channel: str, ident: str) -> str:
    ident = ident.strip()
    for prefix in (f"{channel}:", "tg:" if channel == "telegram" else f"{channel}:"):
        if ident.lower().startswith(prefix):
            ident = ident[len(prefix):]
    return ident


class Policies:
    """The case's DM policies (from :meth:`load`); :meth:`annotate` sets ``allowed``/``allowlisted``."""

    def __init__(self, config: Mapping[str, Any] | None, paired: Mapping[str, set[str]], source: str,
                 by_account: Mapping[tuple[str, str], set[str]] | None = None, all_read: bool = False) -> None:
        self.config = config
        self.paired = paired  # channel -> sender ids approved by a pairing file (any account of the channel)
        self.by_account = by_account or {}  # (channel, account) -> sender ids approved in the SQLite store
        self.source = source
        self.all_read = all_read  # a SQLite store was read: a channel it has no row for has no approvals

    @classmethod
    def load(cls, case_dir: Path, cat: Catalog) -> Policies:
        config: Mapping[str, Any] | None = None
        source = ""
        if cat.policy_config is not None:
            value = _parse(case_dir / cat.policy_config.path)
            if isinstance(value, Mapping):
                reader = _CaseFiles(case_dir, cat.policy_config.path, cat.policy_origin)
                config, source = reader.resolve(value, reader.origin, 0, ()), cat.policy_config.path
        store = _store(case_dir)
        paired: dict[str, set[str]] = {}
        by_account: dict[tuple[str, str], set[str]] = {}
        all_read = False
        if store != "sqlite":
            _file_approvals(case_dir, cat, paired)
        if store != "files":
            for db in cat.state_dbs:
                all_read = _sqlite_approvals(case_dir, db, by_account) or all_read
        return cls(config, paired, source, by_account, all_read)

    def judge(self, channel: str, account: str, sender: str) -> tuple[bool | None, bool | None]:
        """(allowed, allowlisted) for ``sender`` on ``channel``/``account``."""
        if self.config is None or not channel or not sender:
            return None, None
        channels = _obj(self.config.get("channels"))
        ch = _obj(channels.get(channel))
        if not ch or INCLUDE_KEY in self.config or INCLUDE_KEY in channels or INCLUDE_KEY in ch:
            return None, None  # an include not resolved from the case (the module's docstring)
        accounts = _obj(ch.get("accounts"))
        acct = _obj(accounts.get(account)) if account else {}
        direct = _obj(_obj(acct.get("direct")).get(sender)) or _obj(_obj(ch.get("direct")).get(sender))
        if any(INCLUDE_KEY in x for x in (accounts, acct, direct, _obj(acct.get("direct")), _obj(ch.get("direct")))):
            return None, None
        policy = _policy(direct) or _policy(acct) or _policy(ch) or DEFAULT_POLICY
        allow = _allow(direct)
        allow = allow if allow is not None else _allow(acct)
        allow = allow if allow is not None else (_allow(ch) or [])
        listed = (sender in {_norm(channel, a) for a in allow if a != "*"} or sender in self.paired.get(channel, ())
                  or sender in self.by_account.get((channel, _account(account)), ()))
        allowlisted: bool | None = listed
        if not listed and policy == "pairing" and channel not in self.paired and not self.all_read:
            allowlisted = None  # approvals may be in a store this does not read
        if policy == "disabled":
            return False, allowlisted
        if policy == "open":
            return True, allowlisted
        return allowlisted, allowlisted

    def annotate(self, event: Event) -> Event:
        if event.kind != "message" or event.role != "user" or not event.sender_id:
            return event
        allowed, allowlisted = self.judge(event.channel, event.account or "default", event.sender_id)
        return dataclasses.replace(event, allowed=allowed, allowlisted=allowlisted)


def _parse(path: Path) -> Any:
    """A config file's value (JSON5), or None when it cannot be read or parsed."""
    try:
        value, err = reference_parse(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return None
    return value if err is None else None


class _CaseFiles:
    """``$include``s of the policy config resolved from the case's copies (the module's docstring)."""

    def __init__(self, case_dir: Path, config: str, origin: str) -> None:
        self.case_dir = case_dir
        self.preimage = config.startswith("preimage/")
        where = origin if origin.startswith(_FS) else config
        self.origin = PurePosixPath("/" + where[len(_FS):]) if where.startswith(_FS) else PurePosixPath("/")
        self.config_dir = self.origin.parent

    def read(self, target: PurePosixPath) -> Any:
        """The parsed value of an included file from the case, or None."""
        rels = []
        if self.preimage:  # ConfigFile.preimage_name: the path relative to the config dir, else its name
            inner = target.relative_to(self.config_dir).as_posix() if target.is_relative_to(self.config_dir) \
                else target.name
            rels.append("preimage/" + inner.replace("..", "_"))
        rels.append(evidence_rel(str(target)))
        root = self.case_dir.resolve()
        for rel in rels:
            path = (self.case_dir / rel).resolve()
            if path.is_relative_to(root) and path.is_file():  # a symlink may not lead out of the case
                return _parse(path)
        return None

    def resolve(self, value: Any, at: PurePosixPath, level: int, chain: tuple[PurePosixPath, ...]) -> Any:
        """``value`` (from the file at ``at``, ``level`` includes below the config) with its includes
        merged in; an include that cannot be resolved is left as ``{"$include": ...}``."""
        if isinstance(value, list):
            return [self.resolve(v, at, level, chain) for v in value]
        if not isinstance(value, Mapping):
            return value
        rest = {k: self.resolve(v, at, level, chain) for k, v in value.items() if k != INCLUDE_KEY}
        if INCLUDE_KEY not in value:
            return rest
        specs = include_specs(value[INCLUDE_KEY])
        merged: Any = None
        for spec in specs or ():
            target = PurePosixPath(include_target(spec, Path(at)))
            loaded = None if too_deep(level + 1) or target in chain else self.read(target)
            if loaded is None:
                return {**rest, INCLUDE_KEY: value[INCLUDE_KEY]}
            got = self.resolve(loaded, target, level + 1, (*chain, target))
            merged = got if merged is None else merge_included(merged, got)
        if merged is None or (rest and not isinstance(merged, dict)):
            return {**rest, INCLUDE_KEY: value[INCLUDE_KEY]}
        return merge_included(merged, rest) if rest else merged


def _store(case_dir: Path) -> str:
    """Where the case's release keeps pairing approvals (capability ``state_store``): "files",
    "sqlite", or "" when ``case.json`` names no release (then both are read)."""
    from moltir.openclaw.capabilities import Capabilities
    from moltir.openclaw.versions import parse

    try:
        info = json.loads((case_dir / "case.json").read_text(encoding="utf-8")).get("openclaw") or {}
    except (OSError, ValueError, AttributeError):
        return ""
    version = info.get("version") if isinstance(info, dict) else None
    release = parse(version) if isinstance(version, str) else None
    if release is None:
        return ""
    product = "clawdbot" if info.get("product") == "clawdbot" else "openclaw"
    return Capabilities(product, release, "the case's case.json").state_store


def _file_approvals(case_dir: Path, cat: Catalog, paired: dict[str, set[str]]) -> None:
    for channel, f in cat.pairing_stores:
        try:
            data = json.loads((case_dir / f.path).read_bytes())
        except (OSError, ValueError):
            continue
        ids = data.get("allowFrom") if isinstance(data, dict) else None
        paired.setdefault(channel, set()).update(_norm(channel, str(i)) for i in ids or () if i is not None)


def _sqlite_approvals(case_dir: Path, db: SqliteCopy, by_account: dict[tuple[str, str], set[str]]) -> bool:
    """Approvals from a copied ``state/openclaw.sqlite``; whether its table was read (a copy without it,
    or one that cannot be opened, adds nothing)."""
    wal = case_dir / db.wal.path if db.wal is not None else None
    try:
        with private_copy(case_dir / db.db.path, wal, prefix="moltir-triage-") as conn:
            rows = conn.execute("SELECT channel_key, account_id, entry FROM channel_pairing_allow_entries").fetchall()
    except (OSError, sqlite3.Error):
        return False
    for channel, account, entry in rows:
        if isinstance(channel, str) and isinstance(entry, str):
            key = (channel, _account(account if isinstance(account, str) else ""))
            by_account.setdefault(key, set()).add(_norm(channel, entry))
    return True


def _account(account: str) -> str:
    """OpenClaw's account key for approvals (``resolveAllowFromAccountId``): lower-cased, ``default``
    when empty."""
    return account.strip().lower() or "default"
