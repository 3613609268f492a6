"""What each ``harden.config`` setting changes in the resolved config: pure functions, no side effects.

Each returns :class:`Edits`: the key paths to write (a value, or :data:`DELETE`), a refusal (the step
is left out, with the reason) and notes. The keys, checked against the packages (``.cache``):

* DM access: the channel tables of ``dm_policy`` (``dmPolicy`` / ``dm.policy`` per channel and
  release); only a policy that is ``open`` changes. A public ``open`` needs ``"*"`` in the allowlist
  (2026.1.29 ``docs/channels/telegram.md``: "``open`` requires ``"*"``"; 2026.9.6
  ``docs/channels/pairing.md``: "public only when the effective DM allowlist includes ``"*"``"), and
  a ``*`` left in the allowlist approves every sender (2026.9.6 ``docs/gateway/security/exposure-runbook.md``:
  "Do not combine ``"*"`` allowlists with broad tool access"), so, moltir's choice, the wildcard goes
  from the sibling ``allowFrom`` (``dm.allowFrom`` next to ``dm.policy``); ``--allow-from`` IDs are
  added.
* groups: ``groupPolicy: "open"`` -> ``"allowlist"`` (same tables); every ``requireMention: false``
  under ``channels`` -> ``true`` (``channels.telegram.groups.<id>.requireMention``, both releases'
  ``docs/channels/telegram.md``).
* ``gateway.bind`` -> ``"loopback"`` unless the config shows clients that need the wider bind:
  ``gateway.tailscale.mode`` ``serve``/``funnel``, or ``gateway.remote.url`` naming a host that is not
  loopback with a transport other than ``ssh`` (2026.9.6 ``docs/gateway/config-gateway.md``: the
  endpoint clients use; ``ssh`` tunnels to the gateway's loopback) (``--force`` overrides).
* ``gateway.controlUi.allowInsecureAuth``: ``true`` -> ``false`` where the release has the key; where
  it retired it (2026.8.2 and 2026.9.6 list it in their retired tier-eval paths and reject it as
  "Unrecognized key") a present key is removed, as ``openclaw doctor --fix`` would.
* ``agents.defaults.sandbox.mode`` -> ``"non-main"`` only when the engine OpenClaw would use is usable,
  else refused with the reason (:mod:`.sandbox`).
* ``tools.deny``: the listed tool names added (both releases: ``docs/gateway/configuration*.md``,
  ``tools: { deny: [...] }``); existing entries kept, order kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from moltir.actions.dm_policy.scan import scan
from moltir.actions.dm_policy.tables import table_for
from moltir.openclaw.configfile import MISSING, ConfigFile, get_path
from moltir.openclaw.json5edit import DELETE, KeyPath

SETTINGS: Final = ("dm", "groups", "bind", "control_ui", "tools", "sandbox")
DEFAULT_DENY: Final = ("exec", "browser", "gateway")


@dataclass
class Edits:
    paths: dict[KeyPath, object] = field(default_factory=dict)
    refusal: str = ""  # not applied (without --force), with this reason
    refused_as: str = "refused"  # the plan's word for it ("skipped": nothing --force could override)
    notes: list[str] = field(default_factory=list)


def compute(setting: str, cfg: ConfigFile, caps: Any, *, allow_from: Sequence[str] = (),
            deny: Sequence[str] = DEFAULT_DENY, force: bool = False, state_dir: Path | None = None,
            env: Mapping[str, str] | None = None) -> Edits:
    if setting == "dm":
        return dm_edits(cfg, caps, allow_from)
    if setting == "groups":
        return group_edits(cfg, caps)
    if setting == "bind":
        return bind_edits(cfg.data, force=force, remote=_remote_clients(state_dir, caps))
    if setting == "control_ui":
        return control_ui_edits(cfg.data, supported=bool(caps.value("control_ui_insecure_auth")))
    if setting == "tools":
        return tools_edits(cfg.data, deny)
    if setting == "sandbox":
        return sandbox_edits(cfg.data, caps, env or {})
    raise ValueError(setting)


def _allow_from_path(policy_path: KeyPath) -> KeyPath:
    """``...dmPolicy`` -> ``...allowFrom``; ``...dm.policy`` -> ``...dm.allowFrom``."""
    return (*policy_path[:-1], "allowFrom")


def dm_edits(cfg: ConfigFile, caps: Any, allow_from: Sequence[str]) -> Edits:
    policy = "allowlist" if allow_from else "pairing"
    out = Edits()
    found = scan(cfg, table_for(caps), policy, "report", None)
    for t in found.targets:
        if t.kind not in ("dm", "direct") or get_path(cfg.data, t.path) != "open":
            continue
        out.paths[t.path] = policy
        af_path = _allow_from_path(t.path)
        current = get_path(cfg.data, af_path)
        kept = [x for x in current if x != "*"] if isinstance(current, list) else []
        wanted = [*kept, *(i for i in allow_from if i not in kept)]
        if current is not MISSING and wanted != current:
            out.paths[af_path] = wanted if wanted else DELETE
        elif current is MISSING and wanted:
            out.paths[af_path] = wanted
    if not allow_from and out.paths:
        out.notes.append("open DMs become 'pairing': a new sender gets a code to approve "
                         "('openclaw pairing approve'); --allow-from ID makes them an allowlist")
    return out


def group_edits(cfg: ConfigFile, caps: Any) -> Edits:
    out = Edits()
    found = scan(cfg, table_for(caps), "disabled", "report", "allowlist")
    for t in found.targets:
        if t.kind == "group" and get_path(cfg.data, t.path) == "open":
            out.paths[t.path] = "allowlist"
    for path in _mention_paths(cfg.data.get("channels"), ("channels",)):
        out.paths[path] = True
    return out


def _mention_paths(node: Any, base: KeyPath) -> Iterator[KeyPath]:
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        if key == "requireMention" and value is False:
            yield (*base, key)
        elif isinstance(value, Mapping):
            yield from _mention_paths(value, (*base, key))


def _remote_clients(state_dir: Path | None, caps: Any) -> list[str]:
    """Paired devices and nodes seen connecting from a non-loopback address, described (ids shown safely)."""
    from moltir.openclaw.paired_devices import seen_remote
    from moltir.text import shown

    if state_dir is None:
        return []
    seen = seen_remote(state_dir, str(caps.value("state_store")))
    out = [f"paired {s.kind} {shown(s.ident, 40)} was seen connecting from {shown(s.address, 60)}" for s in seen[:3]]
    return [*out, f"{len(seen) - 3} more"] if len(seen) > 3 else out


def bind_edits(data: Mapping[str, Any], *, force: bool, remote: Sequence[str] = ()) -> Edits:
    out = Edits()
    bind = get_path(data, ("gateway", "bind"))
    if bind is MISSING or bind == "loopback":
        return out
    needs = []
    ts_mode = get_path(data, ("gateway", "tailscale", "mode"))
    if ts_mode in ("serve", "funnel"):
        needs.append(f"gateway.tailscale.mode is {ts_mode!r}")
    remote_url = get_path(data, ("gateway", "remote", "url"))
    transport = get_path(data, ("gateway", "remote", "transport"))
    if isinstance(remote_url, str) and transport != "ssh" and not _loopback_url(remote_url):
        needs.append(f"gateway.remote.url reaches the gateway over the network ({_host(remote_url)})")
    needs.extend(remote)
    out.paths[("gateway", "bind")] = "loopback"
    if needs and not force:
        out.refusal = (f"gateway.bind stays {bind!r}: {'; '.join(needs)}, so clients need the wider bind "
                       "(--force binds it to loopback anyway)")
    elif needs:
        out.notes.append(f"--force: gateway.bind set to loopback although {'; '.join(needs)}")
    return out


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _loopback_url(url: str) -> bool:
    host = _host(url)
    return host == "localhost" or host == "::1" or host.startswith("127.")


def control_ui_edits(data: Mapping[str, Any], *, supported: bool) -> Edits:
    out = Edits()
    path: KeyPath = ("gateway", "controlUi", "allowInsecureAuth")
    current = get_path(data, path)
    if current is MISSING:
        return out
    if not supported:
        out.paths[path] = DELETE
        out.notes.append("this release retired gateway.controlUi.allowInsecureAuth: the key is removed")
    elif current is not False:
        out.paths[path] = False
    return out


def tools_edits(data: Mapping[str, Any], deny: Sequence[str]) -> Edits:
    out = Edits()
    current = get_path(data, ("tools", "deny"))
    have = list(current) if isinstance(current, list) else []
    missing = [t for t in deny if t not in have]
    if missing:
        out.paths[("tools", "deny")] = [*have, *missing]
    return out


def sandbox_edits(data: Mapping[str, Any], caps: Any, env: Mapping[str, str]) -> Edits:
    from moltir.actions.harden import sandbox

    out = Edits()
    if not sandbox.wants_change(data):
        return out
    out.paths[sandbox.MODE_PATH] = sandbox.MODE
    problem = sandbox.engine_problem(data, caps, env)
    if problem:
        out.refusal, out.refused_as = f"sandbox mode not set: {problem}", "skipped"
    return out
