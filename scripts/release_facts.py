#!/usr/bin/env python3
"""Read capability facts out of one unpacked OpenClaw npm package.

    python3 scripts/release_facts.py PACKAGE_DIR

PACKAGE_DIR is the ``package/`` directory of an ``npm pack openclaw@V`` tarball, or an installed
``node_modules/openclaw``. The script prints one JSON object::

    {"version": "2026.9.6",
     "facts": {"restart_signal": {"value": "SIGUSR2", "evidence": "dist/run-….mjs:1803"}, ...}}

Every fact comes from a signature in the package itself (a handler registration, a schema
snippet, a CLI option, a docs page), never from comparing version numbers, so the same scan
also works on a release nobody has looked at yet. A value of ``null`` means "the signature
this fact relies on is not in the package" (the evidence says what was looked for); it is not
the same as ``false``.

Evidence is ``relative/path:line`` for the first match (files outside ``dist/worker``,
``dist/plugin-sdk`` and ``dist/extensions`` are searched first), or a short description.
Chunk file names carry a build hash, so they differ between releases.

Standard library only; runs in a few seconds per release.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Channels whose packaging (bundled in the tarball vs. installed separately) matters to an
# incident responder; `channel_plugins_external` reports which of these are not bundled.
WATCHED_CHANNELS = (
    "discord",
    "googlechat",
    "imessage",
    "matrix",
    "mattermost",
    "msteams",
    "signal",
    "slack",
    "telegram",
    "whatsapp",
)

_SECONDARY_PREFIXES = ("dist/worker/", "dist/plugin-sdk/", "dist/extensions/")
_JS_SUFFIXES = (".js", ".mjs", ".cjs")


def _search_order(path: str) -> tuple[bool, bool, int, str]:
    """Main bundle chunks first; secondary bundles (workers, plugin SDK, extensions) last."""
    name = path.rsplit("/", 1)[-1]
    return (path.startswith(_SECONDARY_PREFIXES), "worker" in name, path.count("/"), path)


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    match: re.Match[str]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class Package:
    """The text of every JS file of one package, plus its docs and manifests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.js: dict[str, str] = {}
        self.docs: set[str] = set()
        self.manifests: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "node_modules" and not d.startswith("."))
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            for name in filenames:
                rel = rel_dir + name
                if rel.startswith("docs/"):
                    self.docs.add(rel)
                elif name == "openclaw.plugin.json":
                    self.manifests.append(rel)
                elif name.endswith(_JS_SUFFIXES) and (rel.startswith("dist/") or "/" not in rel):
                    self.js[rel] = (root / rel).read_text(encoding="utf-8", errors="replace")
        self.order = sorted(self.js, key=_search_order)
        self.manifests.sort()

    def files(self, scope: str = "all") -> Iterable[str]:
        for path in self.order:
            if scope == "core" and path.startswith("dist/extensions/"):
                continue
            yield path

    def hits(self, pattern: str, needle: str | tuple[str, ...], scope: str = "all", flags: int = 0) -> Iterable[Hit]:
        """Every match of `pattern` in files that contain the plain substring `needle` (or one of them)."""
        rx = re.compile(pattern, flags)
        needles = (needle,) if isinstance(needle, str) else needle
        for path in self.files(scope):
            text = self.js[path]
            if not any(n in text for n in needles):
                continue
            for m in rx.finditer(text):
                yield Hit(path, text.count("\n", 0, m.start()) + 1, m)

    def first(self, pattern: str, needle: str | tuple[str, ...], scope: str = "all", flags: int = 0) -> Hit | None:
        return next(iter(self.hits(pattern, needle, scope, flags)), None)

    def window(self, hit: Hit, before: int = 0, after: int = 0) -> str:
        text = self.js[hit.path]
        return text[max(0, hit.match.start() - before) : hit.match.end() + after]

    def function_body(self, name: str, needle: str | None = None) -> Hit | None:
        """`function NAME(...) {` up to the closing brace at the start of a line."""
        return self.first(
            rf"function {re.escape(name)}\((?P<params>[^\n]*?)\)\s*\{{(?P<body>.*?)\n\}}",
            needle or f"function {name}(",
            flags=re.DOTALL,
        )


Fact = tuple[Any, str]


def fact(value: Any, evidence: str) -> Fact:
    return value, evidence


def _found(pkg: Package, pattern: str, needle: str, what: str, scope: str = "all") -> Fact:
    hit = pkg.first(pattern, needle, scope)
    return (True, hit.where) if hit else (False, f"no {what}")


# --- restart -------------------------------------------------------------------------------


def restart_signal(pkg: Package) -> Fact:
    signals: dict[str, Hit] = {}
    pattern = r"process(?:\$\d+)?\.(?:on|once)\(\s*[\"'](SIGUSR[12])[\"']\s*,\s*[A-Za-z_$][\w$]*\s*\)"
    for hit in pkg.hits(pattern, "SIGUSR", scope="core"):
        signals.setdefault(hit.match.group(1), hit)
    if not signals:
        return fact(None, 'no process.on("SIGUSR1"|"SIGUSR2", handler) in dist')
    names = sorted(signals)
    return fact("+".join(names), "; ".join(signals[n].where for n in names))


def external_restart_default_allowed(pkg: Package) -> Fact:
    """Does an external restart signal work without `commands.restart: true` in the config?"""
    hit = pkg.first(
        r"set\w*RestartPolicy\(\{\s*allowExternal:\s*(?P<expr>[^{}\n]+?)\s*\}\)", "allowExternal:", scope="core"
    )
    if hit is None:
        return fact(None, "no set…RestartPolicy({ allowExternal }) call")
    expr = hit.match.group("expr")
    if "=== true" in expr:
        return fact(False, f"{hit.where} ({expr.strip()})")
    call = re.match(r"([A-Za-z_$][\w$]*)\(", expr)
    if call:
        body = pkg.function_body(call.group(1))
        if body is not None:
            text = body.match.group("body")
            if "!== false" in text:
                return fact(True, f"{hit.where}; {body.where} (!== false)")
            if "=== true" in text:
                return fact(False, f"{hit.where}; {body.where} (=== true)")
    return fact(None, f"{hit.where} (could not evaluate {expr.strip()!r})")


def gateway_auth_hot_reload(pkg: Package) -> Fact:
    """Is a gateway.auth.token change applied without a gateway restart?"""
    hit = pkg.first(r"AUTH_CREDENTIAL_PATHS\s*=\s*\[[^\]]*\"gateway\.auth\.token\"", "AUTH_CREDENTIAL_PATHS")
    if hit:
        return fact(True, hit.where)
    rule = pkg.first(r"prefix:\s*\"gateway\",\s*kind:\s*\"(\w+)\"", 'prefix: "gateway"', scope="core")
    if rule:
        return fact(rule.match.group(1) != "restart", f'{rule.where} (prefix "gateway" kind {rule.match.group(1)})')
    return fact(None, 'no reload rule for "gateway" and no AUTH_CREDENTIAL_PATHS')


# --- secrets -------------------------------------------------------------------------------


def secret_refs(pkg: Package) -> Fact:
    return _found(pkg, r"\bSecretRefSchema\s*=", "SecretRefSchema", "SecretRefSchema")


def secret_ref_sources(pkg: Package) -> Fact:
    hit = pkg.first(
        r"SecretRefSchema\s*=\s*(?:z\.)?discriminatedUnion\(\s*\"source\",\s*\[(?P<body>.{0,4000}?)\]\s*\)",
        "SecretRefSchema",
        flags=re.DOTALL,
    )
    if hit is None:
        return fact([], "no SecretRefSchema = discriminatedUnion(\"source\", …)")
    body = hit.match.group("body")
    sources = set(re.findall(r"source:\s*(?:z\.)?literal\(\"(\w+)\"\)", body))
    sources |= {name.lower() for name in re.findall(r"\b([A-Z][a-z]+)SecretRefSchema\b", body)}
    return fact(sorted(sources), hit.where)


def _gateway_auth_field(pkg: Package, field: str) -> Fact:
    pattern = (
        r"mode:\s*(?:z\.)?union\(\[[^\]]*?literal\(\"token\"\)[^\]]*?literal\(\"password\"\)[^\]]*\]\)"
        r"(?P<rest>.{0,1500})"
    )
    for hit in pkg.hits(pattern, 'literal("password")', scope="core", flags=re.DOTALL):
        rest = hit.match.group("rest")
        if "allowTailscale" not in rest:
            continue  # not gateway.auth
        line = re.search(rf"(?m)^\s*{field}:\s*(?P<type>[^\n]+)", rest)
        if line is None:
            continue
        kind = line.group("type")
        if "Secret" in kind:
            return fact(True, f"{hit.where} ({field}: SecretInput)")
        if "string()" in kind:
            return fact(False, f"{hit.where} ({field}: string)")
    return fact(None, "gateway.auth zod schema not found")


def gateway_token_secretref(pkg: Package) -> Fact:
    return _gateway_auth_field(pkg, "token")


def gateway_password_secretref(pkg: Package) -> Fact:
    return _gateway_auth_field(pkg, "password")


# --- channels and DM policy ----------------------------------------------------------------


DmKeys = dict[str, dict[str, str]]  # channel -> {key: evidence}


def _dm_keys(pkg: Package) -> DmKeys:
    """Per channel, the DM-policy keys (`dmPolicy`, `dm.policy`) the bundled schema accepts."""
    keys: DmKeys = {}
    msg = r"channels\.([a-z][a-z0-9-]*)\.(dmPolicy|dm\.policy)=\\?[\"']open\\?[\"'] requires"
    for hit in pkg.hits(msg, "requires channels.", scope="all"):
        keys.setdefault(hit.match.group(1), {}).setdefault(hit.match.group(2), hit.where)
    dm_schema = r"(?:const|let|var)\s+([A-Z][A-Za-z]*?)DmSchema\s*=\s*(?P<body>.{0,400}?)\}\s*\)"
    for hit in pkg.hits(dm_schema, "DmSchema", scope="all", flags=re.DOTALL):
        if re.search(r"\bpolicy:", hit.match.group("body")):
            keys.setdefault(hit.match.group(1).lower(), {}).setdefault("dm.policy", hit.where)
    return keys


def dm_policy_keys(keys: DmKeys) -> Fact:
    if not keys:
        return fact({}, "no 'channels.<id>.dmPolicy=\"open\" requires' messages or <Channel>DmSchema")
    value = {ch: sorted(k) for ch, k in sorted(keys.items())}
    watched = [ch for ch in sorted(keys) if ch in WATCHED_CHANNELS]
    evidence = "; ".join(f"{ch} {key}: {where}" for ch in watched for key, where in sorted(keys[ch].items()))
    return fact(value, evidence or "only unwatched channels")


def doctor_dm_policy_migration(pkg: Package) -> Fact:
    pattern = r"Moved \$\{[\w.]+\}\.dm\.policy → \$\{[\w.]+\}\.dmPolicy"
    return _found(pkg, pattern, ".dm.policy", "doctor migration dm.policy → dmPolicy")


def discord_slack_top_dm_policy(keys: DmKeys, migration: Fact) -> Fact:
    have = {ch: keys.get(ch, {}) for ch in ("discord", "slack")}
    if all(have.values()):
        ok = all("dmPolicy" in have[ch] for ch in have)
        where = "; ".join(
            f"{ch}: {have[ch].get('dmPolicy') or have[ch].get('dm.policy')}" for ch in ("discord", "slack")
        )
        return fact(ok, where)
    if migration[0]:
        return fact(True, f"schemas not bundled; doctor migrates dm.policy → dmPolicy ({migration[1]})")
    return fact(None, "discord/slack schemas not in package")


def googlechat_dm_key(keys: DmKeys) -> Fact:
    found = keys.get("googlechat")
    if not found:
        return fact(None, "googlechat schema not in package")
    return fact("+".join(sorted(found)), "; ".join(f"{k}: {w}" for k, w in sorted(found.items())))


def telegram_direct_dm_policy(pkg: Package) -> Fact:
    hit = pkg.first(
        r"TelegramDirect\w*Schema\s*=\s*(?:z\.)?(?:strictObject|object)\(\{(?P<body>.{0,300})",
        "TelegramDirect",
        flags=re.DOTALL,
    )
    if hit and "dmPolicy:" in hit.match.group("body"):
        return fact(True, hit.where)
    return fact(False, "no TelegramDirect…Schema with dmPolicy")


def telegram_api_root(pkg: Package) -> Fact:
    return _found(pkg, r"\bapiRoot:\s*(?:z\.)?string\(\)", "apiRoot", "apiRoot: string() in a schema")


def channel_plugins(pkg: Package) -> tuple[Fact, Fact]:
    bundled: set[str] = set()
    for rel in pkg.manifests:
        try:
            data = json.loads((pkg.root / rel).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        channels = data.get("channels") if isinstance(data, dict) else None
        if isinstance(channels, list):
            bundled.update(c for c in channels if isinstance(c, str))
    evidence = f"{len(pkg.manifests)} openclaw.plugin.json manifests"
    external = [c for c in WATCHED_CHANNELS if c not in bundled]
    return fact(sorted(bundled), evidence), fact(external, f"watched channels minus bundled ({evidence})")


# --- process, lock, port -------------------------------------------------------------------


def lock_dir(pkg: Package) -> Fact:
    body = pkg.function_body("resolveGatewayLockDir")
    if body is None:
        return fact(None, "no function resolveGatewayLockDir")
    text = body.match.group("params") + body.match.group("body")
    if '"tmp"' in text:
        return fact("<state>/tmp/openclaw-<uid>", body.where)
    if "tmpdir" in text:
        return fact("$TMPDIR/openclaw-<uid>", body.where)
    return fact(None, f"{body.where} (unrecognised)")


def lock_hash(pkg: Package) -> Fact:
    hit = pkg.first(r"`gateway\.\$\{\w+\}\.lock`", "gateway.${", scope="core")
    if hit is None:
        return fact(None, "no `gateway.${hash}.lock` template")
    before = pkg.window(hit, before=800)
    algo = re.findall(r"sha(1|256)", before)
    return fact(f"sha{algo[-1]}" if algo else None, hit.where)


def state_lock_file(pkg: Package) -> Fact:
    return _found(pkg, r"\"gateway\.state\.lock\"", "gateway.state.lock", '"gateway.state.lock"', scope="core")


def respawn_wrapper(pkg: Package) -> Fact:
    """Does `openclaw gateway run` (foreground) run under an `openclaw` respawn parent?"""
    entries = [p for p in pkg.order if re.match(r"dist/entry[.\w-]*\.m?js$", p)]
    respawn = next((p for p in entries if "OPENCLAW_NO_RESPAWN" in pkg.js[p]), None)
    if respawn is None:
        return fact(False, "no OPENCLAW_NO_RESPAWN respawn in dist/entry*")
    skip = re.compile(r"function shouldSkip\w*Respawn\w*\([^)]*\)\s*\{(?P<body>.*?)\n\}", re.DOTALL)
    for path in entries:
        for m in skip.finditer(pkg.js[path]):
            if '"gateway"' in m.group("body"):
                line = pkg.js[path].count("\n", 0, m.start()) + 1
                return fact(False, f"{path}:{line} (foreground gateway run skips respawn)")
    return fact(True, f"{respawn} (respawn, no gateway skip)")


def gateway_process_title(pkg: Package) -> Fact:
    hit = pkg.first(r"process(?:\$\d+)?\.title\s*=\s*\"openclaw-gateway\"", "openclaw-gateway", scope="core")
    if hit:
        return fact(True, hit.where)
    return fact(False, 'no process.title = "openclaw-gateway" (title comes from the CLI preaction only)')


def profile_port_rule(pkg: Package) -> Fact:
    body = pkg.function_body("resolveGatewayPort")
    if body is None:
        return fact(None, "no function resolveGatewayPort")
    text = body.match.group("body")
    if "2166136261" in text or "Math.imul" in text:
        return fact("fnv", body.where)
    return fact("default", body.where)


def default_gateway_port(pkg: Package) -> Fact:
    hit = pkg.first(r"DEFAULT_GATEWAY_PORT\s*=\s*(\d+)", "DEFAULT_GATEWAY_PORT", scope="core")
    return fact(int(hit.match.group(1)), hit.where) if hit else fact(None, "no DEFAULT_GATEWAY_PORT")


def systemd_restart_prevent_78(pkg: Package) -> Fact:
    return _found(pkg, r"RestartPreventExitStatus=78", "RestartPreventExitStatus", "RestartPreventExitStatus=78")


# --- state dirs and env --------------------------------------------------------------------


def _string_list(pkg: Package, const: str) -> Fact:
    hit = pkg.first(rf"{const}\s*=\s*\[(?P<items>[^\]]*)\]", const, scope="core")
    if hit is None:
        return fact(None, f"no {const}")
    return fact(re.findall(r"[\"']([^\"']+)[\"']", hit.match.group("items")), hit.where)


def openclaw_home_env(pkg: Package) -> Fact:
    return _found(pkg, r"env(?:\.OPENCLAW_HOME\b|\[\"OPENCLAW_HOME\"\])", "OPENCLAW_HOME", "env.OPENCLAW_HOME read")


def clawdbot_env(pkg: Package) -> Fact:
    return _found(
        pkg, r"env(?:\.CLAWDBOT_STATE_DIR\b|\[\"CLAWDBOT_STATE_DIR\"\])", "CLAWDBOT_STATE_DIR",
        "env.CLAWDBOT_STATE_DIR read outside dist/extensions", scope="core",
    )


def config_readonly_env(pkg: Package) -> Fact:
    return _found(pkg, r"OPENCLAW_CONFIG_READONLY", "OPENCLAW_CONFIG_READONLY", "OPENCLAW_CONFIG_READONLY")


def config_meta_last_touched_version(pkg: Package) -> Fact:
    pattern = r"lastTouchedVersion:\s*(?:(?:z\.)?string\(\)|\{\s*type:\s*\"string\")"
    return _found(pkg, pattern, "lastTouchedVersion", "meta.lastTouchedVersion in the config schema")


# --- where evidence lives ------------------------------------------------------------------


def _queried(pkg: Package, table: str) -> Hit | None:
    pattern = rf"(?:selectFrom|insertInto|deleteFrom|updateTable)\(\s*\"{table}\"\s*\)|(?:FROM|INTO|UPDATE) {table}\b"
    return pkg.first(pattern, table, scope="core")


def transcripts_store(pkg: Package) -> Fact:
    hit = _queried(pkg, "transcript_events")
    if hit:
        return fact("sqlite", hit.where)
    jsonl = pkg.first(r"\$\{\w*[sS]essionId\w*\}[^`\n]*\.jsonl`", ".jsonl", scope="core")
    if jsonl:
        return fact("jsonl", jsonl.where)
    return fact(None, "neither transcript_events queries nor a <sessionId>.jsonl path")


def meeting_transcripts_store(pkg: Package) -> Fact:
    """The `transcripts` feature (meeting/voice transcripts), separate from session transcripts."""
    hit = pkg.first(r"new TranscriptsStore\(\s*path\.join\([^)]*\"transcripts\"\)", "TranscriptsStore", scope="core")
    if hit is None:
        return fact(None, "no TranscriptsStore(<state>/transcripts)")
    export = pkg.first(r"\bexportRootDir\b", "exportRootDir", scope="core")
    if export:
        return fact("sqlite (exports under <state>/transcripts)", f"{hit.where}; {export.where}")
    return fact("<state>/transcripts/<date>/<session>/", hit.where)


def devices_store(pkg: Package) -> Fact:
    hit = _queried(pkg, "device_pairing_paired")
    if hit:
        return fact("sqlite", hit.where)
    json_hit = pkg.first(r"[\"']paired\.json[\"']", "paired.json", scope="core")
    return fact("devices/paired.json", json_hit.where) if json_hit else fact(None, "no paired.json / SQLite store")


def pairing_store(pkg: Package) -> Fact:
    hit = _queried(pkg, "channel_pairing_requests")
    if hit:
        return fact("sqlite", hit.where)
    json_hit = pkg.first(r"-pairing\.json", "-pairing.json", scope="core")
    if json_hit:
        return fact("credentials/<channel>-pairing.json", json_hit.where)
    return fact(None, "no pairing store found")


def exec_approvals_store(pkg: Package) -> Fact:
    hit = _queried(pkg, "exec_approvals_config")
    if hit:
        return fact("state/openclaw.sqlite#exec_approvals_config", hit.where)
    body = pkg.function_body("resolveExecApprovalsPath")
    if body is None:
        return fact(None, "no function resolveExecApprovalsPath")
    text = body.match.group("body")
    if "StateDir" in text:
        return fact("<state>/exec-approvals.json", body.where)
    if "DEFAULT_FILE" in text or "~/.openclaw" in text:
        return fact("~/.openclaw/exec-approvals.json", body.where)
    return fact(None, f"{body.where} (unrecognised)")


def _dedicated_or_state(pkg: Package, filename: str, table: str, label: str) -> Fact:
    pattern = rf"path\.join\(\s*resolve\w*Dir\([^)]*\),\s*\"{re.escape(filename)}\"\s*\)"
    hit = pkg.first(pattern, filename, scope="core")
    if hit:
        return fact(label, hit.where)
    create = pkg.first(rf"CREATE TABLE IF NOT EXISTS {table}\b", table, scope="core")
    if create:
        return fact("state/openclaw.sqlite", create.where)
    return fact(None, f"no {label} path and no {table} table")


def tasks_store(pkg: Package) -> Fact:
    return _dedicated_or_state(pkg, "runs.sqlite", "task_runs", "tasks/runs.sqlite")


def flows_store(pkg: Package) -> Fact:
    return _dedicated_or_state(pkg, "registry.sqlite", "flow_runs", "flows/registry.sqlite")


def plugin_state_store(pkg: Package) -> Fact:
    return _dedicated_or_state(pkg, "state.sqlite", "plugin_state_entries", "plugin-state/state.sqlite")


def state_db(pkg: Package) -> Fact:
    return _found(pkg, r"\"openclaw\.sqlite\"", "openclaw.sqlite", '"openclaw.sqlite" (state/openclaw.sqlite)', "core")


def agent_db(pkg: Package) -> Fact:
    return _found(pkg, r"\"openclaw-agent\.sqlite\"", "openclaw-agent.sqlite", '"openclaw-agent.sqlite"', "core")


def audit_ledger_store(pkg: Package) -> Fact:
    hit = _queried(pkg, "audit_events")
    return fact(True, hit.where) if hit else fact(False, "no audit_events queries")


def secret_store_sqlite(pkg: Package) -> Fact:
    hit = _queried(pkg, "secret_store_entries")
    return fact(True, hit.where) if hit else fact(False, "no secret_store_entries queries")


# --- CLI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    hit: Hit
    description: str
    options: list[str]
    tail: str


def _commands(pkg: Package, name: str, description: str) -> list[Command]:
    """Commander registrations `.command("name")` whose description matches `description`."""
    found = []
    needles = (f'command("{name}")', f"command('{name}')")
    for hit in pkg.hits(rf"\.command\(\s*[\"']{re.escape(name)}[\"']\s*\)", needles, scope="core"):
        text = pkg.js[hit.path]
        chain = text[hit.match.start() : hit.match.start() + 4000]
        end = chain.find(".action(")
        tail = chain[end:] if end >= 0 else ""
        chain = chain[:end] if end >= 0 else chain
        desc = re.search(r"\.description\(\s*([\"'`])(.*?)\1", chain, re.DOTALL)
        if desc is None or not re.search(description, desc.group(2), re.IGNORECASE):
            continue
        options = re.findall(r"(?:\.option|\.requiredOption|new Option)\(\s*[\"'`](?:-\w,\s*)?(--[\w-]+)", chain)
        found.append(Command(hit, desc.group(2), sorted(set(options)), tail))
    return found


def _command_options(pkg: Package, name: str, description: str, label: str) -> Fact:
    found = _commands(pkg, name, description)
    if not found:
        return fact(None, f"no `{label}` command")
    options = sorted({o for c in found for o in c.options})
    return fact(options, found[0].hit.where)


def _has_command(pkg: Package, name: str, description: str, label: str) -> Fact:
    found = _commands(pkg, name, description)
    return fact(True, found[0].hit.where) if found else fact(False, f"no `{label}` command")


def security_audit_json_secret_diagnostics(pkg: Package) -> Fact:
    for cmd in _commands(pkg, "audit", r"foot-?guns|security"):
        if "secretDiagnostics" in cmd.tail:
            return fact(True, cmd.hit.where)
    return fact(False, "security audit action does not mention secretDiagnostics")


def _subcommands(pkg: Package, parent: str, description: str) -> Fact:
    """Subcommands of the top-level `openclaw PARENT` group (the one whose description matches)."""
    root = (
        rf"(?:const|let|var)\s+(?P<var>\w+)\s*=\s*\w+\.command\(\s*[\"']{parent}[\"']\s*\)"
        r"\s*\.description\(\s*[\"'`](?P<desc>[^\"'`]*)"
    )
    for hit in pkg.hits(root, f'command("{parent}")', scope="core"):
        if not re.search(description, hit.match.group("desc"), re.IGNORECASE):
            continue
        var = re.escape(hit.match.group("var"))
        names = re.findall(rf"\b{var}\s*\.command\(\s*[\"']([\w-]+)", pkg.js[hit.path])
        return fact(sorted(set(names)), hit.where)
    return fact([], f"no `{parent}` command group")


def cli_top_commands(pkg: Package) -> Fact:
    """Names registered as `program.command("name")` (core and bundled plugins)."""
    pattern = r"\bprogram\s*\.command\(\s*[\"']([\w-]+)"
    names = {h.match.group(1) for h in pkg.hits(pattern, ("program.command(", "program\n"), scope="all")}
    return fact(sorted(names), 'program.command("…") registrations in dist')


def docs_cli_pages(pkg: Package) -> Fact:
    pages = sorted(
        {p[len("docs/cli/") :].split("/")[0].removesuffix(".md") for p in pkg.docs if p.startswith("docs/cli/")}
    )
    return fact(pages, "docs/cli/")


def _doc(pkg: Package, rel: str) -> Fact:
    return (True, rel) if rel in pkg.docs else (False, f"no {rel}")


def _doc_dir(pkg: Package, rel: str) -> Fact:
    present = any(p.startswith(rel) for p in pkg.docs)
    return (True, rel) if present else (False, f"no {rel}")


def audit_check_ids(pkg: Package) -> Fact:
    """The per-channel DM check ids of `security audit` (templated `channels.${id}.dm.*`)."""
    pattern = r"checkId:\s*`channels\.\$\{[^}]+\}\.(dm\.[\w.]+)`"
    hits = list(pkg.hits(pattern, "}.dm.", scope="all"))
    if not hits:
        return fact([], "no checkId: `channels.${…}.dm.*` literals")
    return fact(sorted({h.match.group(1) for h in hits}), hits[0].where)


# --- driver --------------------------------------------------------------------------------


def _package_json(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def collect(root: Path) -> dict[str, Any]:
    meta = _package_json(root)
    pkg = Package(root)
    facts: dict[str, Fact] = {}

    def add(name: str, fn: Callable[[], Fact]) -> Fact:
        facts[name] = fn()
        return facts[name]

    add("engines_node", lambda: fact((meta.get("engines") or {}).get("node"), "package.json engines.node"))
    # restart
    add("restart_signal", lambda: restart_signal(pkg))
    add("external_restart_default_allowed", lambda: external_restart_default_allowed(pkg))
    add("gateway_auth_hot_reload", lambda: gateway_auth_hot_reload(pkg))
    # secrets
    add("secret_refs", lambda: secret_refs(pkg))
    add("secret_ref_sources", lambda: secret_ref_sources(pkg))
    add("gateway_token_secretref", lambda: gateway_token_secretref(pkg))
    add("gateway_password_secretref", lambda: gateway_password_secretref(pkg))
    add("secrets_subcommands", lambda: _subcommands(pkg, "secrets", r"secret"))
    secrets_cmds = facts["secrets_subcommands"]
    facts["secrets_reload_cli"] = ("reload" in secrets_cmds[0], secrets_cmds[1])
    add("cli_allow_exec", lambda: _found(pkg, r"[\"']--allow-exec[\"']", "--allow-exec", "--allow-exec option", "core"))
    add("docs_cli_secrets_md", lambda: _doc(pkg, "docs/cli/secrets.md"))
    add("docs_gateway_secrets_dir", lambda: _doc_dir(pkg, "docs/gateway/secrets/"))
    # HTTP
    add("readyz", lambda: _found(pkg, r"[\"'`]/readyz[\"'`]", "/readyz", '"/readyz" route'))
    # DM policy
    dm_keys = _dm_keys(pkg)
    add("dm_policy_keys", lambda: dm_policy_keys(dm_keys))
    migration = add("doctor_dm_policy_migration", lambda: doctor_dm_policy_migration(pkg))
    add("discord_slack_top_dm_policy", lambda: discord_slack_top_dm_policy(dm_keys, migration))
    add("googlechat_dm_key", lambda: googlechat_dm_key(dm_keys))
    add("telegram_direct_dm_policy", lambda: telegram_direct_dm_policy(pkg))
    add("telegram_api_root", lambda: telegram_api_root(pkg))
    bundled, external = channel_plugins(pkg)
    facts["channel_plugins_bundled"] = bundled
    facts["channel_plugins_external"] = external
    add("audit_dm_check_ids", lambda: audit_check_ids(pkg))
    # process, lock, port
    add("lock_dir", lambda: lock_dir(pkg))
    facts["lock_in_state_dir"] = (
        None if facts["lock_dir"][0] is None else facts["lock_dir"][0].startswith("<state>"),
        facts["lock_dir"][1],
    )
    add("lock_hash", lambda: lock_hash(pkg))
    add("state_lock_file", lambda: state_lock_file(pkg))
    add("respawn_wrapper", lambda: respawn_wrapper(pkg))
    add("gateway_process_title_forced", lambda: gateway_process_title(pkg))
    add("profile_port_rule", lambda: profile_port_rule(pkg))
    add("default_gateway_port", lambda: default_gateway_port(pkg))
    add("systemd_restart_prevent_exit_78", lambda: systemd_restart_prevent_78(pkg))
    add("gateway_stop_options", lambda: _command_options(pkg, "stop", r"gateway", "gateway stop"))
    stop = facts["gateway_stop_options"]
    facts["gateway_stop_force"] = (None if stop[0] is None else "--force" in stop[0], stop[1])
    # state dirs and env
    add("openclaw_home_env", lambda: openclaw_home_env(pkg))
    add("clawdbot_env", lambda: clawdbot_env(pkg))
    add("legacy_state_dirs", lambda: _string_list(pkg, "LEGACY_STATE_DIRNAMES"))
    add("legacy_config_filenames", lambda: _string_list(pkg, "LEGACY_CONFIG_FILENAMES"))
    add("config_readonly_env", lambda: config_readonly_env(pkg))
    add("skip_channels_env", lambda: _found(pkg, r"OPENCLAW_SKIP_CHANNELS", "OPENCLAW_SKIP_CHANNELS",
                                            "OPENCLAW_SKIP_CHANNELS", "core"))
    add("config_meta_last_touched_version", lambda: config_meta_last_touched_version(pkg))
    # evidence locations
    add("transcripts_store", lambda: transcripts_store(pkg))
    add("meeting_transcripts_store", lambda: meeting_transcripts_store(pkg))
    add("devices_store", lambda: devices_store(pkg))
    add("pairing_store", lambda: pairing_store(pkg))
    add("exec_approvals_store", lambda: exec_approvals_store(pkg))
    add("tasks_store", lambda: tasks_store(pkg))
    facts["tasks_sqlite"] = (facts["tasks_store"][0] is not None, facts["tasks_store"][1])
    add("flows_store", lambda: flows_store(pkg))
    add("plugin_state_store", lambda: plugin_state_store(pkg))
    add("state_db", lambda: state_db(pkg))
    add("agent_db", lambda: agent_db(pkg))
    add("secret_store_sqlite", lambda: secret_store_sqlite(pkg))
    # CLI
    add("config_validate_cli", lambda: _has_command(pkg, "validate", r"config", "config validate"))
    add("security_audit_options", lambda: _command_options(pkg, "audit", r"foot-?guns|security", "security audit"))
    audit_opts = facts["security_audit_options"]
    facts["security_audit_token_flag"] = (
        None if audit_opts[0] is None else "--token" in audit_opts[0],
        audit_opts[1],
    )
    add("security_audit_json_secret_diagnostics", lambda: security_audit_json_secret_diagnostics(pkg))
    add("audit_ledger", lambda: _has_command(pkg, "audit", r"activity|agent run|tool action", "audit (ledger)"))
    add("audit_ledger_store", lambda: audit_ledger_store(pkg))
    add("devices_subcommands", lambda: _subcommands(pkg, "devices", r"pairing"))
    add("backup_cli", lambda: _has_command(pkg, "create", r"backup", "backup create"))
    add("triage_cli", lambda: _has_command(pkg, "triage", r".", "triage"))
    add("cli_top_commands", lambda: cli_top_commands(pkg))
    add("docs_cli_pages", lambda: docs_cli_pages(pkg))
    add("docs_operator_incident_response", lambda: _doc(
        pkg, "docs/gateway/security/operator-incident-response.md"))

    return {
        "version": meta.get("version"),
        "facts": {name: {"value": value, "evidence": evidence} for name, (value, evidence) in facts.items()},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root = Path(argv[1])
    if not (root / "package.json").is_file():
        print(f"release_facts: {root}/package.json not found", file=sys.stderr)
        return 2
    json.dump(collect(root), sys.stdout, indent=1, sort_keys=False, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
