"""``dm_policy.set`` and ``dm_policy.restore``: every DM path off, comments kept, exactly reversible.

Which keys (shared/research/openclaw-facts.md §2, openclaw-old-run.md §6, the bundled channel
schemas of 2026.9.6, the zod schemas of 2026.1.29): see :data:`CURRENT` and :data:`LEGACY`, one
row per channel. OpenClaw resolves a DM policy as account > channel > default (``pairing``,
which is not off), and on Telegram 2026.9.x a per-chat ``direct.<chatId>.dmPolicy`` beats both.
So ``set`` writes the policy on the channel root AND on every ``accounts.<id>``, rewrites every
existing per-chat override, and inserts the key where an enabled channel or account lacks it.

Decisions where the brief is silent (also in docs/incident.md, "What dm_policy touches"):

* a key that exists is always rewritten, even on a disabled channel/account; a missing key is
  inserted only where the channel (and the account) is enabled -- a disabled one gets no DMs;
* legacy keys that still exist next to the canonical one (Discord/Slack/Google Chat ``dm.policy``
  on 2026.9.x) are rewritten too, so both readings say "disabled"; on clawdbot/2026.1.x those
  channels get ONLY ``dm.policy`` (``dmPolicy`` there makes the config invalid);
* a channel moltir has no row for is handled by what its block shows: existing ``dmPolicy`` /
  ``dm.policy`` keys (root and accounts) are rewritten; without either it counts as a channel
  with no DM key;
* channels with no DM key (buzz, tlon, twitch, ...) are reported, or, with
  ``no_dm_key: "disable-channel"``, get ``enabled: false`` on the root and on every account;
* ``channels.defaults`` and ``channels.modelByChannel`` are not channels;
* ``restore`` puts back exactly the recorded paths (deleting what moltir inserted, including an
  intermediate object such as ``dm: {...}`` it created); a path someone changed since is left
  and reported unless ``--force``. When the file is still byte-for-byte what moltir wrote, the
  result is the saved pre-image, byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final

from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult, StepStatus
from moltir.errors import EXIT_ENV, MoltirError, usage_error, verify_error
from moltir.openclaw.capabilities import Capabilities
from moltir.openclaw.configfile import MISSING, ConfigFile, FileEdit, get_path, kind_name, sha256
from moltir.openclaw.json5edit import DELETE, KeyPath, parse, same_value, unified_diff

ALL_DM: Final = frozenset({"pairing", "allowlist", "open", "disabled"})
NOT_CHANNELS: Final = frozenset({"defaults", "modelByChannel"})
SECTION: Final = "dm_policy"
ABSENT: Final = "absent"


@dataclass(frozen=True)
class ChannelRule:
    """Where one channel keeps its DM (and group) policy, relative to the channel block."""

    dm: KeyPath | None = ("dmPolicy",)  # None: the channel has no DM policy key
    account_dm: KeyPath | None = ("dmPolicy",)  # None: accounts carry none (inherit the channel's)
    accounts: bool = True  # the channel has ``accounts.<id>`` blocks
    insert_in_accounts: bool = True  # False: loose account schema, only rewrite keys that exist
    legacy_dm: tuple[KeyPath, ...] = ()  # also rewritten when present (never inserted)
    direct_dm: bool = False  # Telegram ``direct.<chatId>.dmPolicy`` per-chat overrides
    group: KeyPath | None = ("groupPolicy",)
    account_group: KeyPath | None = ("groupPolicy",)
    group_overrides: bool = False  # groups.<g>.groupPolicy, groups.<g>.topics.<t>..., direct.<c>.topics.<t>...
    dm_values: frozenset[str] = ALL_DM
    account_enabled: bool = True  # accounts accept ``enabled``


_DM: Final = ChannelRule()
_DM_NO_GROUP: Final = ChannelRule(group=None, account_group=None)
_NO_ACCOUNTS: Final = ChannelRule(accounts=False, account_dm=None, account_group=None)
_NESTED: Final = ChannelRule(dm=("dm", "policy"), account_dm=("dm", "policy"))
_NO_DM: Final = ChannelRule(dm=None, account_dm=None, group=None, account_group=None)
_NO_DM_GROUP: Final = ChannelRule(dm=None, account_dm=None)

# openclaw 2026.9.x: the bundled channel schemas (dist/bundled-channel-config-metadata.generated-*.mjs)
# plus the documented external plugins (qqbot, yuanbao, synology-chat).
CURRENT: Final[Mapping[str, ChannelRule]] = {
    "telegram": ChannelRule(direct_dm=True, group_overrides=True),
    "whatsapp": _DM,
    "discord": ChannelRule(legacy_dm=(("dm", "policy"),)),
    "slack": ChannelRule(legacy_dm=(("dm", "policy"),)),
    "googlechat": ChannelRule(legacy_dm=(("dm", "policy"),)),
    "signal": _DM,
    "imessage": _DM,
    "irc": _DM,
    "line": _DM,
    "mattermost": _DM,
    "nextcloud-talk": _DM,
    "feishu": _DM,
    "zalo": _DM,
    "zalouser": _DM,
    "sms": _DM_NO_GROUP,
    "msteams": _NO_ACCOUNTS,
    "nostr": ChannelRule(accounts=False, account_dm=None, group=None, account_group=None),
    "matrix": ChannelRule(dm=("dm", "policy"), account_dm=("dm", "policy"), account_group=None),
    "synology-chat": ChannelRule(group=None, account_group=None,
                                 dm_values=frozenset({"allowlist", "open", "disabled"})),
    "qqbot": ChannelRule(insert_in_accounts=False, dm_values=frozenset({"allowlist", "open", "disabled"})),
    "yuanbao": ChannelRule(dm=("dm", "policy"), account_dm=("dm", "policy"), insert_in_accounts=False,
                           group=None, account_group=None),
    # no DM policy key at all: enabled:false is the only off switch
    "a2a": ChannelRule(dm=None, account_dm=None, accounts=False, group=None, account_group=None),
    "reef": ChannelRule(dm=None, account_dm=None, accounts=False, group=None, account_group=None),
    "twitch": _NO_DM,
    "clickclack": _NO_DM,
    "raft": _NO_DM,
    "tlon": _NO_DM,
    "buzz": ChannelRule(dm=None, account_dm=None, group_overrides=True),
    "qa-channel": _NO_DM_GROUP,
}

# clawdbot 2026.1.24 and openclaw 2026.1.x-2.x: the core zod schemas (dist/config/zod-schema.providers-*.js)
# and the extension schemas. Discord, Slack and Google Chat only know the nested dm.policy.
LEGACY: Final[Mapping[str, ChannelRule]] = {
    "telegram": ChannelRule(group_overrides=True),
    "whatsapp": _DM,
    "discord": _NESTED,
    "slack": _NESTED,
    "googlechat": _NESTED,
    "signal": _DM,
    "imessage": _DM,
    "bluebubbles": _DM,
    "msteams": _NO_ACCOUNTS,
    "matrix": ChannelRule(dm=("dm", "policy"), account_dm=("dm", "policy"), account_group=None),
    "mattermost": _DM,
    "nextcloud-talk": _DM,
    "zalo": _DM,
    "zalouser": _DM,
    "nostr": ChannelRule(accounts=False, account_dm=None, group=None, account_group=None),
}


def table_for(caps: Capabilities) -> Mapping[str, ChannelRule]:
    """The channel table for the installed release, from the capability table: :data:`CURRENT`
    (2026.9.6) with the rows that changed across releases set from their answers -- Discord/Slack
    ``dmPolicy`` (2026.2.17) or only ``dm.policy``, Google Chat ``dmPolicy`` (2026.8.1) or only
    ``dm.policy`` (unknown release: no row, so existing keys are rewritten and none is inserted),
    Telegram per-chat ``direct`` overrides (2026.3.1) -- plus the channels only older releases
    ship (:data:`LEGACY`)."""
    table = {**LEGACY, **CURRENT}
    nested_only = caps.discord_slack_dm_key != "dmPolicy"
    table["discord"] = _NESTED if nested_only else CURRENT["discord"]
    table["slack"] = _NESTED if nested_only else CURRENT["slack"]
    gchat = caps.googlechat_dm_key
    if gchat is None:
        del table["googlechat"]
    else:
        table["googlechat"] = _NESTED if gchat == "dm.policy" else CURRENT["googlechat"]
    table["telegram"] = CURRENT["telegram"] if caps.telegram_direct_dm else LEGACY["telegram"]
    return table


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


# ---- shared plumbing -------------------------------------------------------------------------

def _describe(value: Any) -> str:
    return "(absent)" if value is MISSING else repr(value) if not isinstance(value, str) else value


def _diff(file_edits: list[FileEdit]) -> str:
    return "".join(fe.diff for fe in file_edits)


def _created_value(paths: list[tuple[KeyPath, object]], prefix: KeyPath) -> Any:
    """What moltir's insert puts at ``prefix`` for the paths below it."""
    if len(paths) == 1 and paths[0][0] == prefix:
        return paths[0][1]
    root: dict[str, Any] = {}
    for path, value in paths:
        target = root
        for key in path[len(prefix):-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
    return root


def _owner_note(cfg: ConfigFile, path: KeyPath) -> str:
    """Where the key lives, when that is not the main config file (an ``$include``)."""
    owner = cfg.owner_of(path)[0]
    return "" if owner == cfg.path else f"in {owner}"


WARM_CONFIG = "warm.config"  # ctx.shared key (warmers only): the ConfigFile as the earlier steps will leave it


def _load(ctx: StepContext) -> ConfigFile:
    return ConfigFile.load(ctx.install)


class SetDmPolicy(Action):
    name = "dm_policy.set"
    description = ("Turn DMs off on every channel and account (per-chat overrides too), keeping the "
                   "config's comments and layout; records the old values for dm_policy.restore.")
    params = {
        "policy": Param((str,), default="disabled", choices=("disabled", "allowlist", "pairing"),
                        help="the DM policy to write everywhere"),
        "no_dm_key": Param((str,), default="report", choices=("report", "disable-channel"),
                           help="channels without a DM policy key: report them, or set enabled: false"),
        "groups": Param((str,), default=None, choices=(None, "disabled", "allowlist"),
                        help="also set groupPolicy (and per-group overrides) to this value"),
    }

    def _compute(self, ctx: StepContext) -> tuple[ConfigFile, Scan, dict[KeyPath, object]]:
        cfg = _load(ctx)
        table = table_for(ctx.install.caps)
        result = scan(cfg, table, str(ctx.params["policy"]), str(ctx.params["no_dm_key"]),
                      ctx.params.get("groups"))
        edits: dict[KeyPath, object] = {}
        for t in result.targets:
            current = get_path(cfg.data, t.path)
            if current is MISSING or not same_value(current, t.value):
                edits[t.path] = t.value
        return cfg, result, edits

    def plan(self, ctx: StepContext) -> Plan:
        cfg, result, edits = self._compute(ctx)
        file_edits = cfg.plan_edits(edits) if edits else []
        changes = tuple(Change("config", _dotted(p), _describe(get_path(cfg.data, p)), str(v).lower()
                               if isinstance(v, bool) else str(v), detail=_owner_note(cfg, p))
                        for p, v in edits.items())
        warnings = list(result.reports)
        reason = cfg.readonly_reason()
        if reason and edits:
            warnings.append(f"the config is read-only ({reason}): the step will refuse to write (exit 3)")
        policy = ctx.params["policy"]
        if not edits:
            summary = f"DM policy already {policy!r} on all {len(result.targets)} paths"
        else:
            summary = (f"set {len(edits)} of {len(result.targets)} DM/group paths to {policy!r} "
                       f"in {len(file_edits)} file(s)")
        return Plan(summary, changes, diff=_diff(file_edits), already_done=not edits, warnings=tuple(warnings),
                    fails=EXIT_ENV if reason and edits else 0)

    def warm(self, ctx: StepContext) -> None:
        """Parse the config and plan the edits now (both reference parses land in the cache), and leave
        the config as it will be after them for the next warmers (token.rotate edits that text)."""
        cfg, _result, edits = self._compute(ctx)
        planned = cfg.plan_edits(edits) if edits else []
        cfg.start_validation(planned)
        ctx.shared[WARM_CONFIG] = cfg.with_planned(planned) if planned else cfg

    def still_holds(self, ctx: StepContext) -> str | None:
        try:
            edits = self._compute(ctx)[2]
        except MoltirError as exc:
            return exc.one_line()
        if not edits:
            return None
        paths = ", ".join(_dotted(p) for p in list(edits)[:3])
        paths += f" (+{len(edits) - 3} more)" if len(edits) > 3 else ""
        return f"{len(edits)} DM/group path(s) are no longer {ctx.params['policy']!r}: {paths}"

    def apply(self, ctx: StepContext) -> StepResult:
        cfg, result, edits = self._compute(ctx)
        details: dict[str, Any] = {"paths": [_dotted(t.path) for t in result.targets], "reported": result.reports,
                                   "notes": result.notes, "config": str(cfg.path)}
        if not edits:
            summary = (f"DM policy already {ctx.params['policy']!r} everywhere ({len(result.targets)} paths)"
                       if result.targets or result.reports else "no channels configured: nothing to turn off")
            return StepResult("already", summary, details, tuple(result.reports))
        file_edits = cfg.plan_edits(edits)
        self._record(ctx, cfg, edits, file_edits)
        ctx.event("dm_policy.write", files=[str(fe.path) for fe in file_edits],
                  changed=[_dotted(p) for p in edits])
        written = cfg.write(file_edits, case=ctx.case)
        details["changed"] = [_dotted(p) for p in edits]
        details["files"] = [{"path": str(w.path), "before_sha256": w.before_sha256,
                             "after_sha256": w.after_sha256, "preimage": w.preimage} for w in written]
        details["validated"] = cfg.validation.describe() if cfg.validation else None
        note = cfg.validation_warning()
        return StepResult("done", f"set {len(edits)} DM/group paths to {ctx.params['policy']!r} "
                                  f"in {len(written)} file(s)", details,
                          (*result.reports, *([note] if note else [])))

    def _record(self, ctx: StepContext, cfg: ConfigFile, edits: Mapping[KeyPath, object],
                file_edits: list[FileEdit]) -> None:
        """restore.json section ``dm_policy``: written BEFORE the config is touched."""
        owners = {p: cfg.owner_of(p) for p in edits}
        entries: list[dict[str, Any]] = []
        created_groups: dict[KeyPath, list[tuple[KeyPath, object]]] = {}
        for p, value in edits.items():
            owner, inner = owners[p]
            entry: dict[str, Any] = {"path": list(p), "file": str(owner), "written": value}
            old = get_path(cfg.data, p)
            if old is MISSING:
                doc = cfg.files[owner].doc
                missing = doc.missing_prefix(inner) or inner
                created = p[:len(p) - len(inner) + len(missing)]
                entry["old"] = ABSENT
                entry["created"] = list(created)
                created_groups.setdefault(created, []).append((p, value))
            else:
                entry["old"] = {"value": old}
            entries.append(entry)
        for entry in entries:
            if "created" in entry:
                created = tuple(entry["created"])
                entry["created_value"] = _created_value(created_groups[created], created)
        files = {fe.path: fe for fe in file_edits}
        record = {
            "config": str(cfg.path),
            "policy": ctx.params["policy"],
            "files": {str(path): {"preimage": cfg.preimage_name(path), "preimage_sha256": fe.before_sha256,
                                  "written_sha256": sha256(fe.after.encode("utf-8"))}
                      for path, fe in files.items()},
            "paths": entries,
        }
        existing = ctx.case.restore_section(SECTION)
        if existing is None:
            ctx.case.record_restore(SECTION, record)
            return
        # a resumed/repeated run: keep the first old values, add paths seen for the first time
        known = {tuple(e["path"]) for e in existing.get("paths", [])}
        merged = dict(existing)
        merged["paths"] = [*existing.get("paths", []), *(e for e in entries if tuple(e["path"]) not in known)]
        merged_files = dict(existing.get("files", {}))
        for path, info in record["files"].items():
            if path in merged_files:
                merged_files[path] = {**merged_files[path], "written_sha256": info["written_sha256"]}
            else:
                merged_files[path] = info
        merged["files"] = merged_files
        ctx.case.update_restore(SECTION, merged)

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        try:
            edits = self._compute(ctx)[2]
        except MoltirError as exc:
            raise verify_error(f"after dm_policy.set the config no longer loads: {exc.one_line()}") from None
        if edits:
            paths = ", ".join(_dotted(p) for p in list(edits)[:5])
            more = f" (+{len(edits) - 5} more)" if len(edits) > 5 else ""
            raise verify_error(f"DM policy not in effect at {paths}{more}",
                               "someone (or OpenClaw) rewrote the config meanwhile; run the step again")


@dataclass
class _RestorePlan:
    cfg: ConfigFile
    edits: dict[KeyPath, object]
    restored: list[str]
    already: list[str]
    conflicts: list[str]
    overridden: list[str]  # conflicts put back anyway because of --force
    preimage_files: dict[str, bytes]  # file -> pre-image bytes to write back whole


class RestoreDmPolicy(Action):
    name = "dm_policy.restore"
    description = ("Put back the DM (and group) policies dm_policy.set recorded in this case, exactly; "
                   "a value changed since is left and reported (--force puts the old value back anyway).")
    params: ClassVar[Mapping[str, Param]] = {}

    def _compute(self, ctx: StepContext) -> _RestorePlan | None:
        record = ctx.case.restore_section(SECTION)
        if not record:
            return None
        cfg = _load(ctx)
        edits: dict[KeyPath, object] = {}
        restored: list[str] = []
        already: list[str] = []
        conflicts: list[str] = []
        overridden: list[str] = []
        force = ctx.options.force
        deleted_prefixes: set[KeyPath] = set()
        for entry in record.get("paths", []):
            path: KeyPath = tuple(entry["path"])
            written = entry["written"]
            current = get_path(cfg.data, path)
            old = entry["old"]
            name = _dotted(path)
            if old == ABSENT:
                if current is MISSING:
                    already.append(name)
                    continue
                if not same_value(current, written):
                    if not force:
                        conflicts.append(f"{name} is now {_describe(current)!r}, not {written!r} as moltir "
                                         "left it: left as it is")
                        continue
                    overridden.append(name)
                restored.append(name)
                created: KeyPath = tuple(entry.get("created") or path)
                if created in deleted_prefixes:
                    continue
                if created != path and same_value(get_path(cfg.data, created), entry.get("created_value")):
                    edits[created] = DELETE
                    deleted_prefixes.add(created)
                else:
                    edits[path] = DELETE
                continue
            old_value = restored_value(path, old["value"], ctx.options.reopen_open)
            if current is not MISSING and same_value(current, old_value):
                already.append(name)
                continue
            if current is MISSING or not same_value(current, written):
                if not force:
                    conflicts.append(f"{name} is now {_describe(current)!r}, not {written!r} as moltir left it: "
                                     "left as it is")
                    continue
                overridden.append(name)
            edits[path] = old_value
            restored.append(name)
        preimages: dict[str, bytes] = {}
        for fname, info in record.get("files", {}).items():
            src = cfg.files.get(Path(fname))
            if src is None or src.identity.sha256 != info.get("written_sha256"):
                continue
            try:
                raw = (ctx.case.dir / info["preimage"]).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(raw).hexdigest() == info.get("preimage_sha256"):
                preimages[fname] = raw
        return _RestorePlan(cfg, edits, restored, already, conflicts, overridden, preimages)

    def _file_edits(self, rp: _RestorePlan) -> list[FileEdit]:
        file_edits = rp.cfg.plan_edits(rp.edits) if rp.edits else []
        out: list[FileEdit] = []
        for fe in file_edits:
            raw = rp.preimage_files.get(str(fe.path))
            if raw is not None and not rp.conflicts:
                # the file is exactly what moltir wrote: its pre-image IS the restored file
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None and _semantically_equal(rp.cfg, fe, text):
                    fe = FileEdit(fe.path, fe.before, text, fe.diff if text == fe.after else
                                  unified_diff(fe.before, text, str(fe.path)), fe.edits, fe.before_sha256)
            out.append(fe)
        return out

    def plan(self, ctx: StepContext) -> Plan:
        rp = self._compute(ctx)
        if rp is None:
            return Plan("nothing to restore: dm_policy.set changed nothing in this case", already_done=True)
        file_edits = self._file_edits(rp)
        changes = tuple(Change("config", _dotted(p), _describe(get_path(rp.cfg.data, p)),
                               "(removed)" if v is DELETE else str(v)) for p, v in rp.edits.items())
        summary = (f"put back {len(rp.restored)} DM/group paths" if rp.edits
                   else "DM policies already as before containment")
        warnings = [*rp.conflicts, *(f"{name} was edited during the incident: --force puts the recorded value "
                                     "back over that edit" for name in rp.overridden)]
        reason = rp.cfg.readonly_reason()
        if reason and file_edits:
            warnings.append(f"the config is read-only ({reason}): the step will refuse to write (exit 3)")
        return Plan(summary, changes, diff="".join(fe.diff for fe in file_edits), already_done=not rp.edits,
                    warnings=tuple(warnings), fails=EXIT_ENV if reason and file_edits else 0)

    def apply(self, ctx: StepContext) -> StepResult:
        rp = self._compute(ctx)
        if rp is None:
            return StepResult("skipped", "nothing to restore: dm_policy.set changed nothing in this case")
        details: dict[str, Any] = {"restored": rp.restored, "already": rp.already, "conflicts": rp.conflicts}
        if not rp.edits:
            status: StepStatus = "already" if not rp.conflicts else "skipped"
            return StepResult(status, f"DM policies already as recorded ({len(rp.already)} paths)"
                              + (f"; {len(rp.conflicts)} conflict(s) left" if rp.conflicts else ""),
                              details, tuple(rp.conflicts))
        file_edits = self._file_edits(rp)
        ctx.event("dm_policy.restore", files=[str(fe.path) for fe in file_edits],
                  paths=[_dotted(p) for p in rp.edits], conflicts=len(rp.conflicts), forced=ctx.options.force)
        written = rp.cfg.write(file_edits, case=ctx.case, refuse_invalid=False)
        details["files"] = [{"path": str(w.path), "before_sha256": w.before_sha256,
                             "after_sha256": w.after_sha256} for w in written]
        details["validated"] = rp.cfg.validation.describe() if rp.cfg.validation else None
        note = rp.cfg.validation_warning()
        summary = f"put back {len(rp.restored)} DM/group paths"
        if rp.conflicts:
            summary += (f"; {len(rp.conflicts)} changed during the incident and left as they are "
                        "(--force puts the recorded values back)")
        if rp.overridden:
            details["forced"] = rp.overridden
            summary += (f"; --force overwrote {len(rp.overridden)} edited during the incident: "
                        + ", ".join(rp.overridden))
        final: StepStatus = "forced" if rp.overridden else "done"
        return StepResult(final, summary, details, (*rp.conflicts, *([note] if note else [])))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        record = ctx.case.restore_section(SECTION)
        if not record:
            return
        try:
            cfg = _load(ctx)
        except MoltirError as exc:
            raise verify_error(f"after dm_policy.restore the config no longer loads: {exc.one_line()}") from None
        conflicts = {c.split(" ", 1)[0] for c in result.details.get("conflicts", [])}
        wrong: list[str] = []
        for entry in record.get("paths", []):
            path: KeyPath = tuple(entry["path"])
            if _dotted(path) in conflicts:
                continue
            current = get_path(cfg.data, path)
            old = entry["old"]
            if old == ABSENT:
                if current is not MISSING:
                    wrong.append(_dotted(path))
            elif current is MISSING or current != restored_value(path, old["value"], ctx.options.reopen_open):
                wrong.append(_dotted(path))
        if wrong:
            raise verify_error(f"DM policies not back at {', '.join(wrong[:5])}"
                               + (f" (+{len(wrong) - 5} more)" if len(wrong) > 5 else ""),
                               "someone rewrote the config meanwhile; run 'moltir restore' again")


def is_dm_path(path: KeyPath) -> bool:
    return bool(path) and (path[-1] == "dmPolicy" or tuple(path[-2:]) == ("dm", "policy"))


def restored_value(path: KeyPath, recorded: object, reopen_open: str) -> object:
    """What restore writes back at ``path``: the recorded pre-incident value, except a DM policy that was
    ``open`` (anyone may write to the bot) when ``restore --reopen-open=pairing`` (or allowlist,
    disabled) asks for a safer one."""
    if recorded == "open" and reopen_open != "open" and is_dm_path(path):
        return reopen_open
    return recorded


def _semantically_equal(cfg: ConfigFile, fe: FileEdit, text: str) -> bool:
    """The pre-image parses to the same value as the path-based restore (so using it changes nothing else)."""
    try:
        return same_value(parse(text, source=str(fe.path)).value, parse(fe.after, source=str(fe.path)).value)
    except MoltirError:
        return False


__all__ = ["CURRENT", "LEGACY", "ChannelRule", "RestoreDmPolicy", "Scan", "SetDmPolicy", "Target", "scan",
           "table_for"]
