"""The scan: every config path that must hold a value for DMs to be off (and what cannot be turned
off), computed from the resolved config and the channel table, without side effects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from moltir.actions.dm_policy.tables import NOT_CHANNELS, ChannelRule
from moltir.errors import usage_error
from moltir.openclaw.configfile import MISSING, ConfigFile, get_path, kind_name
from moltir.openclaw.json5edit import KeyPath


def _dotted(path: KeyPath) -> str:
    return ".".join(path)


@dataclass(frozen=True)
class Target:
    path: KeyPath
    value: object
    kind: str  # "dm" | "direct" | "group" | "enabled"


@dataclass
class Scan:
    """Every path that must hold a value for DMs to be off, and what could not be turned off."""

    targets: list[Target] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)  # left as they are (no DM key, value not supported)
    notes: list[str] = field(default_factory=list)  # informational (disabled, nothing inserted)


def _require_object(cfg: ConfigFile, path: KeyPath, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        kind = kind_name(value)
        raise usage_error(f"{cfg.location(path)}: {_dotted(path)} is {kind}, expected an object",
                          "fix the file by hand; moltir changed nothing")
    return value


def scan(cfg: ConfigFile, table: Mapping[str, ChannelRule], policy: str, no_dm_key: str,
         groups: str | None) -> Scan:
    """Compute every target path from the resolved config (no side effects)."""
    out = Scan()
    channels = cfg.data.get("channels")
    if not isinstance(channels, Mapping):
        return out
    for cid in channels:
        if cid in NOT_CHANNELS:
            continue
        base: KeyPath = ("channels", cid)
        block = _require_object(cfg, base, channels[cid])
        rule = table.get(cid)
        if rule is None:
            rule = _guess_rule(block)
            if rule.dm is None:
                out.notes.append(f"channels.{cid}: a channel moltir has no table row for")
        _scan_channel(cfg, out, base, block, rule, policy, no_dm_key, groups)
    if groups is not None and isinstance(channels.get("defaults"), Mapping) \
            and "groupPolicy" in channels["defaults"]:
        out.targets.append(Target(("channels", "defaults", "groupPolicy"), groups, "group"))
    return out


def _guess_rule(block: Mapping[str, Any]) -> ChannelRule:
    """A channel without a table row: trust the keys it already has, insert nothing new."""
    keys: list[KeyPath] = [k for k in (("dmPolicy",), ("dm", "policy")) if get_path(block, k) is not MISSING]
    accounts = block.get("accounts")
    if isinstance(accounts, Mapping):
        for acc in accounts.values():
            keys += [k for k in (("dmPolicy",), ("dm", "policy")) if get_path(acc, k) is not MISSING]
    if not keys:
        return ChannelRule(dm=None, account_dm=None, group=None, account_group=None, account_enabled=False)
    primary = keys[0]
    return ChannelRule(dm=primary, account_dm=primary, insert_in_accounts=False, group=None, account_group=None,
                       legacy_dm=tuple(k for k in (("dmPolicy",), ("dm", "policy")) if k != primary))


def _enabled(block: Mapping[str, Any]) -> bool:
    return block.get("enabled") is not False


def _scan_channel(cfg: ConfigFile, out: Scan, base: KeyPath, block: Mapping[str, Any], rule: ChannelRule,
                  policy: str, no_dm_key: str, groups: str | None) -> None:
    cid = base[-1]
    on = _enabled(block)
    accounts: Mapping[str, Any] = {}
    if rule.accounts or "accounts" in block:
        raw_accounts = block.get("accounts", {})
        accounts = _require_object(cfg, (*base, "accounts"), raw_accounts)
        for aid, acc in accounts.items():
            _require_object(cfg, (*base, "accounts", aid), acc)

    if rule.dm is None:
        if no_dm_key == "disable-channel":
            if on:
                out.targets.append(Target((*base, "enabled"), False, "enabled"))
            for aid, acc in accounts.items():
                if rule.account_enabled and (_enabled(acc) or "enabled" in acc):
                    out.targets.append(Target((*base, "accounts", aid, "enabled"), False, "enabled"))
        elif on:
            out.reports.append(f"channels.{cid} has no DM policy setting: its DMs stay as they are "
                               "(with: {no_dm_key: \"disable-channel\"} turns the channel off)")
    elif policy not in rule.dm_values:
        out.reports.append(f"channels.{cid} does not accept dmPolicy {policy!r}: left as it is")
    else:
        _want(out, block, base, rule.dm, policy, "dm", insert=on)
        for legacy in rule.legacy_dm:
            _want(out, block, base, legacy, policy, "dm", insert=False)
        if not on:
            out.notes.append(f"channels.{cid} is disabled: existing policy keys set, none inserted")
        for aid, acc in accounts.items():
            abase = (*base, "accounts", aid)
            acc_on = on and _enabled(acc)
            if rule.account_dm is not None:
                _want(out, acc, abase, rule.account_dm, policy, "dm", insert=acc_on and rule.insert_in_accounts)
            for legacy in rule.legacy_dm:
                _want(out, acc, abase, legacy, policy, "dm", insert=False)
        if rule.direct_dm:
            for owner, obase in [(block, base), *((a, (*base, "accounts", k)) for k, a in accounts.items())]:
                direct = owner.get("direct")
                if isinstance(direct, Mapping):
                    for chat, entry in direct.items():
                        if isinstance(entry, Mapping) and "dmPolicy" in entry:
                            out.targets.append(Target((*obase, "direct", chat, "dmPolicy"), policy, "direct"))

    if groups is not None and rule.group is not None:
        _want(out, block, base, rule.group, groups, "group", insert=on)
        for aid, acc in accounts.items():
            if rule.account_group is not None:
                _want(out, acc, (*base, "accounts", aid), rule.account_group, groups, "group",
                      insert=on and _enabled(acc) and rule.insert_in_accounts)
        if rule.group_overrides:
            for path in _group_overrides(block, base, accounts):
                out.targets.append(Target(path, groups, "group"))


def _want(out: Scan, block: Mapping[str, Any], base: KeyPath, key: KeyPath, value: str, kind: str, *,
          insert: bool) -> None:
    if get_path(block, key) is not MISSING or insert:
        out.targets.append(Target((*base, *key), value, kind))


def _group_overrides(block: Mapping[str, Any], base: KeyPath, accounts: Mapping[str, Any]) -> Iterator[KeyPath]:
    for owner, obase in [(block, base), *((a, (*base, "accounts", k)) for k, a in accounts.items())]:
        for holder in ("groups", "direct"):
            entries = owner.get(holder)
            if not isinstance(entries, Mapping):
                continue
            for gid, entry in entries.items():
                if not isinstance(entry, Mapping):
                    continue
                if holder == "groups" and "groupPolicy" in entry:
                    yield (*obase, holder, gid, "groupPolicy")
                topics = entry.get("topics")
                if isinstance(topics, Mapping):
                    for tid, topic in topics.items():
                        if isinstance(topic, Mapping) and "groupPolicy" in topic:
                            yield (*obase, holder, gid, "topics", tid, "groupPolicy")
