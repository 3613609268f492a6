"""Realistic, commented JSON5 configs, one per release, in that release's own key shapes.

This docstring is the record of what each release accepted. Checked with ``openclaw config
validate --json`` where it exists (2026.5.28+; not in 2026.1.29 or 2026.2.25, where ``config get
gateway.mode`` exits 1 with "Invalid config at ..." / "Config invalid") and by a real gateway
start with an agent turn (tests/integration/test_harness*.py).

* 2026.9.6 validates every channel block strictly against its bundled channel metadata, even for
  channel plugins it does not ship (whatsapp, discord, slack, matrix, msteams): an unknown key
  is an error. BUT at start the gateway would ``npm install`` those plugins from the registry
  ("configured plugin install repair"). ``plugins.entries.<id>.enabled: false`` stops that and
  keeps the channel blocks, so they stay in the file, validated, and offline.
* 2026.1.29 validates telegram, whatsapp, discord, slack and msteams (core zod schema, strict:
  ``dmPolicy`` on discord/slack is rejected, so they use nested ``dm.policy``; whatsapp has no
  root ``enabled``; telegram has no ``direct``). Matrix is an extension whose dependency is not
  installed, so its block is not validated at all (kept in matrix's own ``dm.policy`` shape).
  Unless ``plugins.entries.<id>.enabled`` is set, the gateway auto-enables every configured
  channel's plugin and REWRITES the config as strict JSON; with them enabled, slack/discord
  reach for the network and an unhandled slack DNS rejection kills the gateway. So telegram is
  enabled and the others are ``enabled: false`` in ``plugins.entries``.

The matrix releases (one builder, :func:`config_matrix`, shaped by ``releases.FACTS``):

* 2026.2.25 (core zod schema, strict, all channels shipped as TypeScript extensions): accepts
  top-level ``dmPolicy`` on discord/slack AND the nested ``dm.policy`` (an account keeps it);
  Google Chat only ``dm.policy`` (``channels.googlechat: Unrecognized key: "dmPolicy"``); telegram
  rejects ``apiRoot`` and ``direct`` (Unrecognized key), so the fake is reached through
  ``proxy`` + CONNECT + TLS like 2026.1.29. Without ``plugins.entries`` it auto-enables every
  configured channel plugin and rewrites the file as strict JSON; discord then CONNECTs to
  discord.com through the proxy (refused) and slack resolves slack.com itself (DNS, not the
  proxy; "Non-fatal unhandled rejection", the gateway stays up). So: telegram enabled, every
  other channel plugin ``enabled: false``. At start the doctor notes "Moved
  channels.discord.accounts.community.dm.policy -> ...dmPolicy" but does not write the file.
* 2026.5.28, 2026.7.35: channel plugins external (only telegram is shipped), yet every channel
  block is validated strictly against bundled channel metadata ("must not have additional
  properties"). Telegram HAS ``apiRoot`` (and ``direct``; ``proxy`` is valid too); discord/slack
  accept both ``dmPolicy`` and the nested ``dm.policy``, also on accounts; Google Chat accepts
  only the nested ``dm.policy`` (``dmPolicy`` rejected on the channel and on accounts; an
  account's ``allowFrom`` lives in ``dm``). Without ``plugins.entries``: 2026.5.28 starts and
  installs nothing; 2026.7.35 tries "configured plugin install repair" (npm view -> ENOTCACHED
  under npm_config_offline; clawhub fetch -> refused by the proxy) and then EXITS 1 before it
  listens. So the external channel plugins are ``enabled: false`` ("plugin not installed"
  warnings only).
* 2026.8.2: as 2026.7.35 (also exits 1 after the failed plugin repair without the entries),
  but the nested ``dm.policy`` is REJECTED on discord (channel and accounts), slack accounts and
  Google Chat; Google Chat takes ``dmPolicy`` (channel and accounts, with ``allowFrom``); matrix
  still only ``dm.policy``. It also fetches a hosted model catalog (catalog.openclaw.ai) at
  start with its own DNS-pinning fetch that ignores HTTP(S)_PROXY: ``models.catalogRefresh.enabled:
  false`` keeps it offline (2026.9.6 did the same, logging "remote model catalog refresh failed:
  getaddrinfo ENOTFOUND catalog.openclaw.ai" here; its config now turns it off too).

On every matrix release the gateway did NOT rewrite the file at start and wrote no ``meta``;
from 2026.5.28 on it writes ``openclaw.json.last-good`` beside it. ``openclaw config set``
rewrites it as strict JSON (comments gone) with ``meta.lastTouchedVersion`` (+ ``lastTouchedAt``
up to 2026.7.35; 2026.8.2 writes ``meta.migrations`` instead of ``lastTouchedAt``) and a ``.bak``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import json5
from tests.harness.releases import FACTS, Facts

# Bot ids are the part before ":"; the fake Telegram names its bots after them.
TG_DEFAULT_TOKEN = "123456789:AAFakeDefaultFakeDefaultFakeDefault01"
TG_OPS_TOKEN = "223456789:AAFakeOpsFakeOpsFakeOpsFakeOpsFakeOp02"
TG_ALERTS_TOKEN = "323456789:AAFakeAlertsFakeAlertsFakeAlertsFak03"
TG_DIRECT_CHAT = "555000111"
OFFLINE_PLUGINS = ("whatsapp", "discord", "slack", "matrix", "msteams")


@dataclass(frozen=True)
class ConfigParams:
    port: int
    token: str
    log_file: str
    telegram_url: str      # 2026.9.6: apiRoot; 2026.1.29: proxy (CONNECT, TLS to the fake)
    llm_base_url: str      # fake OpenAI-compatible server, ".../v1"


def _q(value: str) -> str:
    return json.dumps(value)


def _common_head(release_id: str, p: ConfigParams, *, catalog_refresh: bool = False) -> str:
    # 2026.8.2 and 2026.9.6 fetch a hosted model catalog at start through their own pinned-DNS
    # fetch, which ignores HTTP(S)_PROXY: the egress guard cannot refuse it, so it is turned off.
    catalog = ("\n    catalogRefresh: { enabled: false },  // no hosted model catalog fetch at start"
               if catalog_refresh else "")
    return f"""\
// OpenClaw {release_id} configuration for a small self-hosted deployment.
// Written by moltir's test harness (tests/harness/configs.py): keep comments, trailing commas
// and unquoted keys, because moltir must edit this JSON5 file without losing them.
{{
  // --- gateway: local only, token auth ------------------------------------------------
  gateway: {{
    mode: "local",          // required: without it `gateway run` refuses to start
    bind: "loopback",       // explicit: in a container the default binds 0.0.0.0
    port: {p.port},
    auth: {{
      mode: "token",
      token: {_q(p.token)},  // plaintext on purpose: what moltir rotates
    }},
  }},

  logging: {{
    file: {_q(p.log_file)},  // JSON lines; default would be /tmp/openclaw/...
  }},

  update: {{ checkOnStart: false }},  // no registry/telemetry lookups at start

  // --- models: a local OpenAI-compatible endpoint (the test's fake) -----------------------
  models: {{{catalog}
    providers: {{
      fake: {{
        baseUrl: {_q(p.llm_base_url)},
        apiKey: "sk-fake-not-a-secret",
        api: "openai-completions",
        models: [{{ id: "fake-model", name: "Fake Model" }}],
      }},
    }},
  }},
  agents: {{
    defaults: {{
      model: {{ primary: "fake/fake-model" }},
    }},
  }},
"""


def config_2026_9_6(p: ConfigParams) -> str:
    offline = ", ".join(f"{pid}: {{ enabled: false }}" for pid in OFFLINE_PLUGINS)
    return _common_head("2026.9.6", p, catalog_refresh=True) + f"""\

  // Channel plugins 2026.9.6 does not bundle would be npm-installed at start: keep them off.
  plugins: {{
    entries: {{ {offline} }},
  }},

  // --- channels ---------------------------------------------------------------------------
  channels: {{
    telegram: {{
      enabled: true,
      botToken: {_q(TG_DEFAULT_TOKEN)},
      apiRoot: {_q(p.telegram_url)},  // fake Bot API on loopback
      dmPolicy: "pairing",
      groupPolicy: "allowlist",
      // Per-DM override: beats the account and channel policy for this one chat.
      direct: {{
        {_q(TG_DIRECT_CHAT)}: {{ dmPolicy: "allowlist", allowFrom: [{_q(TG_DIRECT_CHAT)}] }},
      }},
      accounts: {{
        ops: {{
          botToken: {_q(TG_OPS_TOKEN)},
          dmPolicy: "allowlist",
          allowFrom: ["111111111"],
        }},
        alerts: {{
          botToken: {_q(TG_ALERTS_TOKEN)},
          dmPolicy: "open",         // the risky one
          allowFrom: ["*"],
        }},
      }},
    }},

    whatsapp: {{
      dmPolicy: "pairing",
      accounts: {{
        default: {{ dmPolicy: "allowlist", allowFrom: ["+15550001111"] }},  // inherited by other accounts
      }},
    }},

    discord: {{
      enabled: true,
      token: "discord-fake-token",
      dmPolicy: "open",
      allowFrom: ["*"],
      dm: {{ enabled: true }},
      accounts: {{
        community: {{ token: "discord-fake-token-2", dmPolicy: "pairing" }},
      }},
    }},

    slack: {{
      enabled: true,
      botToken: "xoxb-fake",
      appToken: "xapp-fake",
      dmPolicy: "pairing",
    }},

    matrix: {{
      enabled: true,
      homeserver: "https://matrix.example.invalid",
      userId: "@bot:example.invalid",
      accessToken: "syt_fake",
      dm: {{ policy: "pairing" }},  // matrix keeps the nested shape in 2026.9.6
    }},

    msteams: {{
      enabled: true,
      appId: "00000000-0000-0000-0000-000000000000",
      appPassword: "fake",
      tenantId: "00000000-0000-0000-0000-000000000001",
      dmPolicy: "pairing",
    }},
  }},
}}
"""


def config_2026_1_29(p: ConfigParams) -> str:
    offline = ", ".join(f"{pid}: {{ enabled: false }}" for pid in OFFLINE_PLUGINS)
    return _common_head("2026.1.29", p) + f"""\

  // Without explicit entries the gateway auto-enables every configured channel plugin and
  // rewrites this file as strict JSON; only telegram runs (against the fake).
  plugins: {{
    entries: {{ telegram: {{ enabled: true }}, {offline} }},
  }},

  // --- channels ---------------------------------------------------------------------------
  channels: {{
    telegram: {{
      enabled: true,
      botToken: {_q(TG_DEFAULT_TOKEN)},
      // No apiRoot in this release: the fake Bot API is reached as a CONNECT proxy that
      // terminates TLS for api.telegram.org with a test CA (NODE_EXTRA_CA_CERTS).
      proxy: {_q(p.telegram_url)},
      dmPolicy: "pairing",
      groupPolicy: "allowlist",
      accounts: {{
        ops: {{
          botToken: {_q(TG_OPS_TOKEN)},
          dmPolicy: "allowlist",
          allowFrom: ["111111111"],
        }},
        alerts: {{
          botToken: {_q(TG_ALERTS_TOKEN)},
          dmPolicy: "open",         // the risky one
          allowFrom: ["*"],
        }},
      }},
    }},

    whatsapp: {{
      dmPolicy: "pairing",
      accounts: {{
        default: {{ dmPolicy: "allowlist", allowFrom: ["+15550001111"] }},
      }},
    }},

    // Discord and Slack: nested dm.policy (a top-level dmPolicy is rejected by this release).
    discord: {{
      enabled: true,
      token: "discord-fake-token",
      dm: {{ enabled: true, policy: "open", allowFrom: ["*"] }},
      accounts: {{
        community: {{ token: "discord-fake-token-2", dm: {{ policy: "pairing" }} }},
      }},
    }},

    slack: {{
      enabled: true,
      botToken: "xoxb-fake",
      appToken: "xapp-fake",
      dm: {{ policy: "pairing" }},
    }},

    matrix: {{
      enabled: true,
      homeserver: "https://matrix.example.invalid",
      userId: "@bot:example.invalid",
      accessToken: "syt_fake",
      dm: {{ policy: "pairing" }},
    }},

    msteams: {{
      enabled: true,
      appId: "00000000-0000-0000-0000-000000000000",
      appPassword: "fake",
      tenantId: "00000000-0000-0000-0000-000000000001",
      dmPolicy: "pairing",
    }},
  }},
}}
"""





def _offline_entries(*, telegram: bool) -> str:
    entries = [f"{pid}: {{ enabled: false }}" for pid in (*OFFLINE_PLUGINS, "googlechat")]
    return ", ".join((["telegram: { enabled: true }"] if telegram else []) + entries)


def _telegram_block(f: Facts, p: ConfigParams) -> str:
    if f.api_root:
        transport = f"apiRoot: {_q(p.telegram_url)},  // fake Bot API on loopback"
    else:
        transport = (f"// No apiRoot in this release: the fake Bot API is reached as a CONNECT proxy that\n"
                     f"      // terminates TLS for api.telegram.org with a test CA (NODE_EXTRA_CA_CERTS).\n"
                     f"      proxy: {_q(p.telegram_url)},")
    direct = ""
    if f.telegram_direct:
        direct = f"""
      // Per-DM override: beats the account and channel policy for this one chat.
      direct: {{
        {_q(TG_DIRECT_CHAT)}: {{ dmPolicy: "allowlist", allowFrom: [{_q(TG_DIRECT_CHAT)}] }},
      }},"""
    return f"""\
    telegram: {{
      enabled: true,
      botToken: {_q(TG_DEFAULT_TOKEN)},
      {transport}
      dmPolicy: "pairing",
      groupPolicy: "allowlist",{direct}
      accounts: {{
        ops: {{
          botToken: {_q(TG_OPS_TOKEN)},
          dmPolicy: "allowlist",
          allowFrom: ["111111111"],
        }},
        alerts: {{
          botToken: {_q(TG_ALERTS_TOKEN)},
          dmPolicy: "open",         // the risky one
          allowFrom: ["*"],
        }},
      }},
    }},
"""


def _googlechat_block(f: Facts) -> str:
    if f.googlechat_dm_key == "dmPolicy":
        note = "// Google Chat: dmPolicy (the nested dm.policy is gone; dm keeps only `enabled`)."
        chan, acct = 'dmPolicy: "pairing",', 'dmPolicy: "allowlist", allowFrom: ["users/111"]'
    else:
        note = "// Google Chat: nested dm.policy only (its schema is strict: dmPolicy is rejected)."
        chan, acct = 'dm: { policy: "pairing" },', 'dm: { policy: "allowlist", allowFrom: ["users/111"] }'
    return f"""\
    {note}
    googlechat: {{
      enabled: true,
      {chan}
      accounts: {{
        workspace: {{ {acct} }},
      }},
    }},
"""


def config_matrix(release_id: str, p: ConfigParams, facts: Facts | None = None) -> str:
    """The config of one matrix release (2026.2.25 ... 2026.8.2), shaped by its :class:`Facts`
    (``facts`` overrides them: a test can build the shape a release must reject)."""
    f = facts or FACTS[release_id]
    if f.discord_slack_nested_dm:   # an account left in the older nested shape, still valid here
        community = 'community: { token: "discord-fake-token-2", dm: { policy: "pairing" } },  // older nested key'
    else:                           # 2026.8.x: the plugin schema rejects dm.policy
        community = 'community: { token: "discord-fake-token-2", dmPolicy: "pairing" },'
    if f.channel_plugins_external:
        plugins = f"""\
  // Channel plugins this release does not ship stay off: validated, never npm-installed.
  plugins: {{
    entries: {{ {_offline_entries(telegram=False)} }},
  }},
"""
    else:
        plugins = f"""\
  // Without explicit entries the gateway auto-enables every configured channel plugin and
  // rewrites this file as strict JSON; only telegram runs (against the fake).
  plugins: {{
    entries: {{ {_offline_entries(telegram=True)} }},
  }},
"""
    return _common_head(release_id, p, catalog_refresh=f.sqlite_state) + f"""
{plugins}
  // --- channels ---------------------------------------------------------------------------
  channels: {{
{_telegram_block(f, p)}
    whatsapp: {{
      dmPolicy: "pairing",
      accounts: {{
        default: {{ dmPolicy: "allowlist", allowFrom: ["+15550001111"] }},  // inherited by other accounts
      }},
    }},

    // Discord and Slack: the canonical top-level dmPolicy (since 2026.2.17; the runtime reads
    // dmPolicy first, then dm.policy).
    discord: {{
      enabled: true,
      token: "discord-fake-token",
      dmPolicy: "open",
      allowFrom: ["*"],
      dm: {{ enabled: true }},
      accounts: {{
        {community}
      }},
    }},

    slack: {{
      enabled: true,
      botToken: "xoxb-fake",
      appToken: "xapp-fake",
      dmPolicy: "pairing",
    }},

{_googlechat_block(f)}
    matrix: {{
      enabled: true,
      homeserver: "https://matrix.example.invalid",
      userId: "@bot:example.invalid",
      accessToken: "syt_fake",
      dm: {{ policy: "pairing" }},  // matrix keeps the nested shape
    }},

    msteams: {{
      enabled: true,
      appId: "00000000-0000-0000-0000-000000000000",
      appPassword: "fake",
      tenantId: "00000000-0000-0000-0000-000000000001",
      dmPolicy: "pairing",
    }},
  }},
}}
"""


def dm_paths(release_id: str) -> list[list[str]]:
    """Every path where this release's harness config keeps a DM policy (``dmPolicy``, ``dm.policy``
    on channels, accounts and Telegram ``direct`` chats), plus ``accounts.<id>.dmPolicy`` for a
    Discord/Slack account that only has the nested key, on releases that read ``dmPolicy`` first."""
    cfg = json5.loads(config_text(release_id, ConfigParams(1, "t", "/l", "http://127.0.0.1:1", "http://127.0.0.1:2/v1")))
    reads_top = FACTS[release_id].discord_slack_dm_policy
    out: list[list[str]] = []

    def block(path: list[str], node: dict[str, object], channel: str) -> None:
        if "dmPolicy" in node:
            out.append([*path, "dmPolicy"])
        dm = node.get("dm")
        if isinstance(dm, dict) and "policy" in dm:
            out.append([*path, "dm", "policy"])
            if reads_top and channel in ("discord", "slack") and "dmPolicy" not in node:
                out.append([*path, "dmPolicy"])

    for channel, node in cfg["channels"].items():
        block(["channels", channel], node, channel)
        for sub in ("accounts", "direct"):
            for key, child in node.get(sub, {}).items():
                block(["channels", channel, sub, key], child, channel)
    return out


def config_text(release_id: str, p: ConfigParams) -> str:
    if release_id == "2026.1.29":
        return config_2026_1_29(p)
    if release_id == "2026.9.6":
        return config_2026_9_6(p)
    return config_matrix(release_id, p)
