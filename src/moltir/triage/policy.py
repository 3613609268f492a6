"""Was the sender of an inbound message allowed? The DM policy in force, read from the case's config.

The config in force during the incident is the one before containment changed it: ``preimage/<config>``
(the exact bytes ``dm_policy.set`` saved before its edit, sealed with the case) when the case has one,
else the copied active config. For a message's channel and account (account settings first, then the
channel's; Telegram's per-chat ``direct.<chatId>`` override first of all):

* ``dmPolicy`` (or the nested ``dm.policy``), OpenClaw's default ``pairing`` when unset;
* ``allowFrom`` (or ``dm.allowFrom``): ids, optionally prefixed ``<channel>:``; ``*`` is a wildcard, not a
  name;
* senders approved by pairing: the copied ``credentials/<channel>[-<account>]-allowFrom.json``
  (``{"version": 1, "allowFrom": [...]}``, the file store up to 2026.7.x).

An event gets ``allowlisted`` (an allowlist names the sender: ``true``/``false``, or ``null`` when the
policy is ``pairing``, the config does not name the sender and the case holds no pairing file for the
channel: 2026.8.1 on keep approvals in SQLite, which this does not read) and ``allowed`` (the policy
admitted the sender: ``open`` admits anyone, ``allowlist`` and ``pairing`` the allowlisted, ``disabled``
nobody). ``$include``d channel sections are not resolved: such messages get ``null`` for both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from moltir.openclaw.json5edit import reference_parse
from moltir.triage.events import Event
from moltir.triage.sources import Catalog

DEFAULT_POLICY = "pairing"


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

    def __init__(self, config: Mapping[str, Any] | None, paired: Mapping[str, set[str]], source: str) -> None:
        self.config = config
        self.paired = paired  # channel -> approved sender ids (every account's file of that channel)
        self.source = source

    @classmethod
    def load(cls, case_dir: Path, cat: Catalog) -> Policies:
        config: Mapping[str, Any] | None = None
        source = ""
        if cat.policy_config is not None:
            try:
                value, err = reference_parse((case_dir / cat.policy_config.path).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                value, err = None, "unreadable"
            if err is None and isinstance(value, Mapping):
                config, source = value, cat.policy_config.path
        paired: dict[str, set[str]] = {}
        for channel, f in cat.pairing_stores:
            try:
                data = json.loads((case_dir / f.path).read_bytes())
            except (OSError, ValueError):
                continue
            ids = data.get("allowFrom") if isinstance(data, dict) else None
            paired.setdefault(channel, set()).update(_norm(channel, str(i)) for i in ids or () if i is not None)
        return cls(config, paired, source)

    def judge(self, channel: str, account: str, sender: str) -> tuple[bool | None, bool | None]:
        """(allowed, allowlisted) for ``sender`` on ``channel``/``account``."""
        if self.config is None or not channel or not sender:
            return None, None
        ch = _obj(_obj(self.config.get("channels")).get(channel))
        if not ch or "$include" in ch:
            return None, None
        acct = _obj(_obj(ch.get("accounts")).get(account)) if account else {}
        direct = _obj(_obj(acct.get("direct")).get(sender)) or _obj(_obj(ch.get("direct")).get(sender))
        policy = _policy(direct) or _policy(acct) or _policy(ch) or DEFAULT_POLICY
        allow = _allow(direct)
        allow = allow if allow is not None else _allow(acct)
        allow = allow if allow is not None else (_allow(ch) or [])
        listed = sender in {_norm(channel, a) for a in allow if a != "*"} or sender in self.paired.get(channel, ())
        allowlisted: bool | None = listed
        if not listed and policy == "pairing" and channel not in self.paired:
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
