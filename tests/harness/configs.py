"""Realistic, commented JSON5 configs, one per release, in that release's own key shapes.

What each release accepted (checked by ``openclaw config validate --json`` on 2026.9.6 and by a
real gateway start on 2026.1.29, which has no ``config validate``):

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
"""

from __future__ import annotations

import json
from dataclasses import dataclass

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


def _common_head(release_id: str, p: ConfigParams) -> str:
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
  models: {{
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
    return _common_head("2026.9.6", p) + f"""\

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


def config_text(release_id: str, p: ConfigParams) -> str:
    return config_2026_1_29(p) if release_id.startswith("2026.1.") else config_2026_9_6(p)
