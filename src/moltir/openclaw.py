"""Find the OpenClaw install moltir acts on: binary, version, generation and every path.

Resolution follows OpenClaw's own rules (shared/research/openclaw-facts.md §1, §4, §5):

* home: ``OPENCLAW_HOME`` > ``$HOME``;
* profile: ``--dev`` (= profile ``dev``) > ``--profile`` > ``OPENCLAW_PROFILE``;
* state dir: ``--state-dir`` > ``OPENCLAW_STATE_DIR`` > ``CLAWDBOT_STATE_DIR`` (legacy) >
  ``~/.openclaw-<profile>`` > the first existing of ``~/.openclaw``, ``~/.clawdbot``,
  ``~/.moltbot``, ``~/.moldbot`` > ``~/.openclaw``;
* config: ``--config`` > ``OPENCLAW_CONFIG_PATH`` > ``CLAWDBOT_CONFIG_PATH`` > the first existing
  of ``<state>/{openclaw,clawdbot,moltbot,moldbot}.json`` > ``<state>/openclaw.json``.

The generation is classified from what the install shows (package name, what the package
ships, what the state dir holds), the version string only as a tie-breaker:

* ``clawdbot``: the clawdbot package (2026.1.x) or a clawdbot-only layout;
* ``openclaw-early``: openclaw 2026.1.29 .. 2026.2.x: JSONL transcripts, plaintext secrets,
  nested ``dm.policy`` on Discord/Slack/Google Chat, no SecretRefs;
* ``openclaw-current``: openclaw 2026.9.x: SQLite state, SecretRefs, ``dmPolicy`` everywhere
  but Matrix;
* ``unknown``: best effort with the current rules, and a warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moltir.errors import MoltirError, env_error, usage_error

Generation = Literal["clawdbot", "openclaw-early", "openclaw-current", "unknown"]

PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$", re.I)
LEGACY_STATE_DIRS = (".clawdbot", ".moltbot", ".moldbot")
CONFIG_NAMES = ("openclaw.json", "clawdbot.json", "moltbot.json", "moldbot.json")
DEFAULT_PORT = 18789
DEV_PORT = 19001
# Variables that select an install; passed to every child and recorded for restarts.
SELECTOR_VARS = ("HOME", "OPENCLAW_HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_PROFILE",
                 "OPENCLAW_GATEWAY_PORT", "CLAWDBOT_STATE_DIR", "CLAWDBOT_CONFIG_PATH", "TMPDIR")
# Variables that carry a gateway credential: never inherited by a child unless moltir sets them.
CREDENTIAL_VARS = ("OPENCLAW_GATEWAY_TOKEN", "OPENCLAW_GATEWAY_PASSWORD", "CLAWDBOT_GATEWAY_TOKEN",
                   "CLAWDBOT_GATEWAY_PASSWORD")


def _fnv1a32(text: str) -> int:
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def profile_port(profile: str) -> int:
    """The port OpenClaw derives for a named profile without gateway.port (``resolveGatewayPort``)."""
    return 20000 + _fnv1a32(profile) % 40000


@dataclass(frozen=True)
class Package:
    name: str  # "openclaw" | "clawdbot"
    version: str
    root: Path
    has_secret_refs: bool


@dataclass(frozen=True)
class Install:
    home: Path
    state_dir: Path
    config_path: Path
    profile: str | None
    binary: Path | None
    package: Package | None
    generation: Generation
    env: Mapping[str, str] = field(repr=False)  # the environment moltir was started with
    notes: tuple[str, ...] = ()

    # ---- identity -------------------------------------------------------------------------
    @property
    def version(self) -> str | None:
        return self.package.version if self.package else None

    @property
    def key(self) -> str:
        """Stable id of this install for locks and case lookup: hash of the real state dir."""
        real = os.path.realpath(self.state_dir)
        return hashlib.sha256(real.encode("utf-8")).hexdigest()[:16]

    @property
    def legacy(self) -> bool:
        return self.generation in ("clawdbot", "openclaw-early")

    @property
    def supports_secret_refs(self) -> bool:
        if self.package is not None:
            return self.package.has_secret_refs
        return self.generation == "openclaw-current"

    @property
    def product(self) -> str:
        return "clawdbot" if self.generation == "clawdbot" else "openclaw"

    # ---- config ---------------------------------------------------------------------------
    def read_config(self) -> dict[str, Any]:
        """Parse the config (JSON5) for meaning. Missing file -> {}; bad syntax -> exit 2."""
        try:
            text = self.config_path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            return {}
        except IsADirectoryError:
            raise usage_error(f"{self.config_path} is a directory, not a config file",
                              "point --config at the file") from None
        except OSError as exc:
            raise env_error(f"cannot read {self.config_path}: {exc.strerror}",
                            "check the file's permissions") from None
        except UnicodeDecodeError as exc:
            raise usage_error(f"{self.config_path}: not UTF-8 text (bad byte at offset {exc.start})",
                              "save the file as UTF-8; moltir changed nothing") from None
        return parse_config_text(text, self.config_path)

    def gateway_port(self, config: Mapping[str, Any] | None = None) -> int:
        for var in ("OPENCLAW_GATEWAY_PORT", "CLAWDBOT_GATEWAY_PORT"):
            raw = self.env.get(var, "").strip()
            if raw.isdigit():
                return int(raw)
        cfg = self.read_config() if config is None else config
        gw = cfg.get("gateway") if isinstance(cfg, Mapping) else None
        port = gw.get("port") if isinstance(gw, Mapping) else None
        if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            return port
        if self.profile == "dev":
            return DEV_PORT
        if self.profile:
            return profile_port(self.profile)
        return DEFAULT_PORT

    # ---- processes, locks, services -------------------------------------------------------
    @property
    def uid(self) -> int:
        return os.getuid()

    def lock_dirs(self) -> list[Path]:
        """Where the gateway's lock files may be, newest layout first."""
        tmp = Path(self.env.get("TMPDIR") or "/tmp")
        dirs = [Path(os.path.realpath(self.state_dir)) / "tmp" / f"openclaw-{self.uid}",
                tmp / f"openclaw-{self.uid}", tmp / f"clawdbot-{self.uid}"]
        if str(tmp) != "/tmp":
            dirs += [Path("/tmp") / f"openclaw-{self.uid}", Path("/tmp") / f"clawdbot-{self.uid}"]
        return dirs

    def systemd_units(self) -> list[str]:
        suffix = f"-{self.profile}" if self.profile else ""
        return [f"openclaw-gateway{suffix}.service", f"clawdbot-gateway{suffix}.service"]

    def launchd_labels(self) -> list[str]:
        if self.profile:
            return [f"ai.openclaw.{self.profile}", f"com.clawdbot.{self.profile}"]
        return ["ai.openclaw.gateway", "com.clawdbot.gateway", "com.steipete.clawdbot.gateway"]

    def tmp_log_dirs(self) -> list[Path]:
        """Default file-log folders (pruned by OpenClaw after 24 h).

        ``/tmp/openclaw`` when it is safe for the user; otherwise -- owned by another user,
        group/world-writable or a symlink, e.g. planted by someone else on a shared host --
        2026.9.x logs to ``<os.tmpdir()>/openclaw-<uid>`` (``resolveSecureTempRoot`` in
        @openclaw/fs-safe), which is ``/tmp/openclaw-<uid>`` when TMPDIR is unset. Both are taken.
        """
        dirs = [Path("/tmp/openclaw"), Path("/tmp/clawdbot")]
        tmp = next((self.env[v] for v in ("TMPDIR", "TMP", "TEMP") if self.env.get(v)), "/tmp")  # os.tmpdir()
        if Path(tmp) != Path("/tmp"):
            dirs.append(Path(tmp) / "openclaw")
        dirs.append(Path(tmp) / f"openclaw-{self.uid}")
        return dirs

    # ---- running the openclaw CLI -----------------------------------------------------------
    def selector_env(self) -> dict[str, str]:
        """The variables that make a child process act on THIS install."""
        env = {"HOME": str(self.home), "OPENCLAW_STATE_DIR": str(self.state_dir),
               "OPENCLAW_CONFIG_PATH": str(self.config_path)}
        if self.profile:
            env["OPENCLAW_PROFILE"] = self.profile
        if self.generation == "clawdbot":
            env["CLAWDBOT_STATE_DIR"] = str(self.state_dir)
            env["CLAWDBOT_CONFIG_PATH"] = str(self.config_path)
        if "OPENCLAW_HOME" in self.env:
            env["OPENCLAW_HOME"] = self.env["OPENCLAW_HOME"]
        return env

    def child_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for an ``openclaw`` child: ours, minus inherited credentials, plus selectors."""
        env = {k: v for k, v in self.env.items() if k not in CREDENTIAL_VARS}
        env.update(self.selector_env())
        env.setdefault("NO_COLOR", "1")
        if extra:
            env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        """argv for the install's own CLI (never put a credential in ``args``)."""
        if self.binary is None:
            raise env_error("the openclaw binary was not found",
                            "install openclaw, put it on PATH, or pass --openclaw-bin PATH")
        return [str(self.binary), *args]

    def describe(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "version": self.version,
            "binary": str(self.binary) if self.binary else None,
            "home": str(self.home),
            "state_dir": str(self.state_dir),
            "config_path": str(self.config_path),
            "profile": self.profile,
            "notes": list(self.notes),
        }


def parse_config_text(text: str, path: Path) -> dict[str, Any]:
    """The value of a config (what ``json5.loads`` gives); a fresh copy each call (callers may mutate it).

    Read with moltir's own JSON5 scanner (:func:`moltir.json5edit.scan_value`): json5 is a slow
    pure-Python parser (~40-100 ms for a 6 KiB config on 2 cores) and gateway.stop reads the
    config's port before it signals the gateway. Where the scanner refuses a text json5 accepts
    (duplicate keys) json5's reading is used, as OpenClaw would; edits always take the reference
    parse (json5edit.parse).
    """
    import copy

    return copy.deepcopy(_parse_config_cached(text, str(path)))


def _parse_config_cached(text: str, path: str) -> dict[str, Any]:
    from moltir.json5edit import parse, reference_parse, scan_value  # lazy: keeps `moltir --help` fast

    try:
        data = scan_value(text)
    except (MoltirError, ValueError, RecursionError):
        data, err = reference_parse(text)   # one json5 parse per distinct text, shared with the editor
    else:
        err = None
    if err is not None:
        parse(text, source=path)  # raises the same file:line:col message as the config editor
        raise usage_error(f"{path}: not valid JSON5: {err}",
                          "fix the syntax error (moltir changed nothing)")
    if not isinstance(data, dict):
        raise usage_error(f"{path}: the config must be a JSON5 object", "fix the file (moltir changed nothing)")
    return data


def _find_package(binary: Path) -> Package | None:
    real = Path(os.path.realpath(binary))
    for parent in [real.parent, *real.parents][:6]:
        meta = parent / "package.json"
        if not meta.is_file():
            continue
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = data.get("name")
        if name in ("openclaw", "clawdbot") and isinstance(data.get("version"), str):
            return Package(name, data["version"], parent, _ships_secret_refs(parent))
    return None


def _ships_secret_refs(root: Path) -> bool:
    """SecretRef support is visible in what the package ships (docs/gateway/secrets/ in 2026.9.x)."""
    return (root / "docs" / "gateway" / "secrets").is_dir() or (root / "docs" / "cli" / "secrets.md").is_file()


@functools.lru_cache(maxsize=8)
def _which(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


def classify(package: Package | None, state_dir: Path, config_path: Path) -> tuple[Generation, list[str]]:
    notes: list[str] = []
    if package is not None:
        if package.name == "clawdbot":
            return "clawdbot", notes
        if package.has_secret_refs:
            return "openclaw-current", notes
        if re.match(r"^2026\.[12]\.", package.version):
            return "openclaw-early", notes
        notes.append(f"openclaw {package.version} is not a release moltir was tested against; "
                     "treating it as the early (2026.1.x) layout")
        return "openclaw-early", notes
    # no binary: look at what the state dir holds
    if (state_dir / "state" / "openclaw.sqlite").exists():
        return "openclaw-current", notes
    if config_path.name == "clawdbot.json" or state_dir.name == ".clawdbot":
        return "clawdbot", notes
    if any(state_dir.glob("agents/*/sessions/*.jsonl")):
        return "openclaw-early", notes
    notes.append("could not tell the OpenClaw generation (no binary found, no state to go by); "
                 "using the current (2026.9.x) rules")
    return "unknown", notes


def discover(*, profile: str | None = None, dev: bool = False, state_dir: str | None = None,
             config: str | None = None, openclaw_bin: str | None = None,
             env: Mapping[str, str] | None = None) -> Install:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("OPENCLAW_HOME") or env.get("HOME") or Path.home()).expanduser()

    if dev:
        profile = "dev"
    if profile is None:
        profile = env.get("OPENCLAW_PROFILE") or None
    if profile is not None and profile != "default" and not PROFILE_RE.match(profile):
        raise usage_error(f"invalid profile name {profile!r}",
                          "profile names are letters, digits, '-' and '_' (at most 64)")
    if profile == "default":
        profile = None

    def expand(p: str) -> Path:
        return Path(p.replace("~", str(home), 1) if p.startswith("~") else p).expanduser().absolute()

    if state_dir:
        sdir = expand(state_dir)
    elif profile and not env.get("OPENCLAW_STATE_DIR"):
        sdir = home / f".openclaw-{profile}"
    elif env.get("OPENCLAW_STATE_DIR"):
        sdir = expand(env["OPENCLAW_STATE_DIR"])
    elif env.get("CLAWDBOT_STATE_DIR"):
        sdir = expand(env["CLAWDBOT_STATE_DIR"])
    else:
        sdir = home / ".openclaw"
        if not sdir.exists():
            for legacy in LEGACY_STATE_DIRS:
                if (home / legacy).exists():
                    sdir = home / legacy
                    break

    if config:
        cpath = expand(config)
    elif env.get("OPENCLAW_CONFIG_PATH") and not (state_dir or (profile and not env.get("OPENCLAW_STATE_DIR"))):
        cpath = expand(env["OPENCLAW_CONFIG_PATH"])
    elif env.get("CLAWDBOT_CONFIG_PATH") and not state_dir:
        cpath = expand(env["CLAWDBOT_CONFIG_PATH"])
    else:
        cpath = next((sdir / n for n in CONFIG_NAMES if (sdir / n).exists()),
                     sdir / ("clawdbot.json" if sdir.name == ".clawdbot" else "openclaw.json"))

    binary: Path | None = None
    search_path = env.get("PATH", os.defpath)
    if openclaw_bin:
        candidate = Path(openclaw_bin).expanduser()
        found = _which(str(candidate), search_path) if candidate.parent == Path() else str(candidate)
        if not found or not Path(found).exists():
            raise env_error(f"--openclaw-bin {openclaw_bin}: no such executable",
                            "pass the path of the openclaw (or clawdbot) binary")
        binary = Path(found).absolute()
    else:
        for name in ("openclaw", "clawdbot"):
            found = _which(name, search_path)
            if found:
                binary = Path(found)
                break

    package = _find_package(binary) if binary else None
    generation, notes = classify(package, sdir, cpath)
    return Install(home=home, state_dir=sdir, config_path=cpath, profile=profile, binary=binary,
                   package=package, generation=generation, env=env, notes=tuple(notes))
