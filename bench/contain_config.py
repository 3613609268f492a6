"""The time-to-contain benchmark's config: 10 channels x 5 accounts, every DM path explicit.

Only channel ids openclaw 2026.9.6 accepts in its bundled channel schemas (and that carry a
``dmPolicy`` on the channel AND on ``accounts.<id>``): shared/research/openclaw-facts.md §2 and
``openclaw-2026.9.6-channel-policy-schema.json``. Telegram is the only channel plugin 2026.9.6
bundles; the nine others are kept offline with ``plugins.entries.<id>.enabled: false`` exactly
as ``tests/harness/configs.py`` does (their blocks stay in the file and are validated, but the
gateway does not try to npm-install them). Every root and every account carries an explicit
``dmPolicy``, so moltir and the baseline script change the same 60 paths.
"""

from __future__ import annotations

import json

from tests.harness.configs import ConfigParams, _common_head

CHANNELS = ("telegram", "whatsapp", "discord", "slack", "signal", "imessage", "irc", "googlechat",
            "mattermost", "line")
ACCOUNTS = tuple(f"acct{i}" for i in range(1, 6))
# a realistic mix of policies before the incident ("open" needs allowFrom ["*"])
POLICIES = ("open", "pairing", "allowlist", "pairing", "open", "pairing")


def _policy_fields(index: int) -> str:
    policy = POLICIES[index % len(POLICIES)]
    if policy == "open":
        return 'dmPolicy: "open", allowFrom: ["*"]'
    if policy == "allowlist":
        return 'dmPolicy: "allowlist", allowFrom: ["111111111"]'
    return 'dmPolicy: "pairing"'


def telegram_token(account: int) -> str:
    """A distinct fake bot token per telegram account (the fake Bot API names bots by the id)."""
    return f"{700000000 + account}:AAFakeBench{account:02d}FakeBenchFakeBenchFakeBe"


def dm_paths() -> list[str]:
    """Every DM policy path of the config, dotted (what the baseline script sets one by one)."""
    out: list[str] = []
    for cid in CHANNELS:
        out.append(f"channels.{cid}.dmPolicy")
        out += [f"channels.{cid}.accounts.{aid}.dmPolicy" for aid in ACCOUNTS]
    return out


def config_text(p: ConfigParams) -> str:
    offline = ", ".join(f"{cid}: {{ enabled: false }}" for cid in CHANNELS if cid != "telegram")
    blocks: list[str] = []
    for ci, cid in enumerate(CHANNELS):
        lines = [f"    // {cid}: the channel's own policy, then five accounts with their own"]
        lines.append(f"    {json.dumps(cid) if '-' in cid else cid}: {{")
        if cid == "telegram":
            lines.append("      enabled: true,")
            lines.append(f"      botToken: {json.dumps(telegram_token(0))},")
            lines.append(f"      apiRoot: {json.dumps(p.telegram_url)},  // fake Bot API on loopback")
        lines.append(f"      {_policy_fields(ci)},")
        lines.append("      accounts: {")
        for ai, aid in enumerate(ACCOUNTS):
            extra = ""
            if cid == "telegram":
                extra = f"botToken: {json.dumps(telegram_token(ai + 1))}, apiRoot: {json.dumps(p.telegram_url)}, "
            lines.append(f"        {aid}: {{ {extra}{_policy_fields(ci + ai + 1)} }},")
        lines.append("      },")
        lines.append("    },")
        blocks.append("\n".join(lines))
    channels = "\n\n".join(blocks)
    return _common_head("2026.9.6", p) + f"""\

  // Channel plugins 2026.9.6 does not bundle would be npm-installed at start: keep them off.
  plugins: {{
    entries: {{ {offline} }},
  }},

  // --- channels: 10 x 5 accounts ---------------------------------------------------------
  channels: {{
{channels}
  }},
}}
"""
