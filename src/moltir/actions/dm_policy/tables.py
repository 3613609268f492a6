"""Where each channel keeps its DM (and group) policy: one :class:`ChannelRule` per channel, for the
current releases (:data:`CURRENT`) and the older ones (:data:`LEGACY`), and the table for an install."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from moltir.openclaw.capabilities import Capabilities
from moltir.openclaw.json5edit import KeyPath

ALL_DM: Final = frozenset({"pairing", "allowlist", "open", "disabled"})
NOT_CHANNELS: Final = frozenset({"defaults", "modelByChannel"})


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
