"""Find the OpenClaw install moltir acts on: binary, version, generation and every path.

Resolution follows OpenClaw's own rules (shared/research/openclaw-facts.md §1, §4, §5):

* home: ``OPENCLAW_HOME`` > ``$HOME``;
* profile: ``--dev`` (= profile ``dev``) > ``--profile`` > ``OPENCLAW_PROFILE``;
* state dir: ``--state-dir`` > ``OPENCLAW_STATE_DIR`` > ``CLAWDBOT_STATE_DIR`` (legacy) >
  ``~/.openclaw-<profile>`` > the first existing of ``~/.openclaw``, ``~/.clawdbot``,
  ``~/.moltbot``, ``~/.moldbot`` > ``~/.openclaw``;
* config: ``--config`` > ``OPENCLAW_CONFIG_PATH`` > ``CLAWDBOT_CONFIG_PATH`` > the first existing
  of ``<state>/{openclaw,clawdbot,moltbot,moldbot}.json`` > ``<state>/openclaw.json``.

What the installed release can do is not classified into eras: :attr:`Install.caps` (the
capability table, :mod:`moltir.openclaw.capabilities`) answers each question from the
package, the release number or the state dir, and says where each answer came from. The
legacy selectors above (``CLAWDBOT_*``, ``.moltbot``/``.moldbot``) are honoured only where the
installed release honours them (all of them when the release is unknown).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltir.errors import MoltirError, env_error, usage_error
from moltir.openclaw import capabilities as capmod

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


@dataclass(frozen=True)
class Install:
    home: Path
    state_dir: Path
    config_path: Path
    profile: str | None
    binary: Path | None
    package: Package | None
    env: Mapping[str, str] = field(repr=False)  # the environment moltir was started with
    notes: tuple[str, ...] = ()
    # (version, where it was read): the release a case's journal recorded for this install, used when
    # neither the package, the binary nor the config tells it now (see engine.effects.with_case_release)
    release_hint: tuple[str, str] | None = None

    # ---- identity -------------------------------------------------------------------------
    @functools.cached_property
    def caps(self) -> capmod.Capabilities:
        """The capability table's answers for this install (computed on first use; may run a bounded
        ``openclaw --version`` when the binary has no package.json around it)."""
        from moltir.openclaw import package as pkg

        version: str | None = None
        basis = "none"
        if self.package is not None:
            version, basis = self.package.version, f"{self.package.root / 'package.json'}"
        elif self.binary is not None:
            version = pkg.version_from_binary(self.binary, self.child_env(), run_as=self.run_as)
            basis = f"{self.binary} --version"
        if version is None:
            with contextlib.suppress(MoltirError):
                meta = self.read_config().get("meta")
                touched = meta.get("lastTouchedVersion") if isinstance(meta, Mapping) else None
                if isinstance(touched, str) and touched.strip():
                    version, basis = touched.strip(), f"meta.lastTouchedVersion in {self.config_path}"
        if version is None and self.release_hint is not None:
            version, basis = self.release_hint
        return capmod.for_install(self.product, version, basis,
                                  package_root=self.package.root if self.package else None,
                                  state_dir=self.state_dir)

    @property
    def version(self) -> str | None:
        rel = self.caps.release
        return str(rel) if rel is not None else None

    @property
    def key(self) -> str:
        """Stable id of this install for locks and case lookup: hash of the real state dir."""
        real = os.path.realpath(self.state_dir)
        return hashlib.sha256(real.encode("utf-8")).hexdigest()[:16]

    @property
    def product(self) -> str:
        """``clawdbot`` for the clawdbot package or a clawdbot-only layout, else ``openclaw``."""
        if self.package is not None:
            return self.package.name
        return "clawdbot" if (self.config_path.name == "clawdbot.json" or self.state_dir.name == ".clawdbot") \
            else "openclaw"

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
        if self.profile and self.caps.profile_port_fnv:
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
        if self.product == "clawdbot":
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

    @functools.cached_property
    def run_as(self) -> tuple[int, int] | None:
        """(uid, gid) the install's own CLI must run as: the state dir's owner, when moltir runs as root on
        another user's install (a system unit's ``User=``), so whatever the CLI creates stays that user's
        and the gateway can still write it. None: run as moltir's own user."""
        if os.geteuid() != 0:
            return None
        for path in (self.state_dir, self.config_path, self.config_path.parent):
            try:
                st = path.stat()
            except OSError:
                continue
            return (st.st_uid, st.st_gid) if st.st_uid != 0 else None
        return None

    @functools.cached_property
    def keyring_unreachable(self) -> str | None:
        """Why the gateway cannot read a secret from this account's keyring at start (so the token must
        go into its config), or None: it runs as another user (a system unit's ``User=``, moltir being
        root), or in a container (which reaches no host keyring or D-Bus session)."""
        if self.run_as is not None:
            return (f"the gateway runs as uid {self.run_as[0]} (e.g. a system unit's User=), not as moltir's "
                    "user: it cannot read this account's keyring")
        from moltir.openclaw import containers

        for c in containers.for_state_dir(self.state_dir, self.env):
            return f"the gateway runs in the {c.engine} container {c.name}: it reaches no keyring on the host"
        return None

    def run_cli(self, *args: str, timeout_s: float, extra_env: Mapping[str, str] | None = None,
                env: Mapping[str, str] | None = None) -> Any:
        """Run the install's CLI bounded, in its own session, as :attr:`run_as`, from its home folder;
        ``extra_env`` adds to :meth:`child_env` (credentials only ever go here, never in ``args``).
        Returns ``subprocess.CompletedProcess[bytes]``; raises ``subprocess.TimeoutExpired`` / OSError."""
        from moltir.openclaw.processes import run_capture

        return run_capture(self.command(*args), timeout_s=timeout_s,
                           env=env if env is not None else self.child_env(extra_env),
                           cwd=str(self.home) if self.home.is_dir() else None, run_as=self.run_as)

    def command(self, *args: str) -> list[str]:
        """argv for the install's own CLI (never put a credential in ``args``)."""
        if self.binary is None:
            raise env_error("the openclaw binary was not found",
                            "install openclaw, put it on PATH, or pass --openclaw-bin PATH")
        return [str(self.binary), *args]

    def describe(self) -> dict[str, Any]:
        return {
            "product": self.product,
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

    Read with moltir's own JSON5 scanner (:func:`moltir.openclaw.json5edit.scan_value`): json5 is a slow
    pure-Python parser (~40-100 ms for a 6 KiB config on 2 cores) and gateway.stop reads the
    config's port before it signals the gateway. Where the scanner refuses a text json5 accepts
    (duplicate keys) json5's reading is used, as OpenClaw would; edits always take the reference
    parse (json5edit.parse).
    """
    import copy

    return copy.deepcopy(_parse_config_cached(text, str(path)))


def _parse_config_cached(text: str, path: str) -> dict[str, Any]:
    from moltir.openclaw.json5edit import parse, reference_parse, scan_value  # lazy: keeps `moltir --help` fast

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
    from moltir.openclaw.package import read_package_json

    real = Path(os.path.realpath(binary))
    for parent in [real.parent, *real.parents][:6]:
        data = read_package_json(parent)
        if data is None:
            continue
        name = data.get("name")
        if name in ("openclaw", "clawdbot") and isinstance(data.get("version"), str):
            return Package(name, data["version"], parent)
    return None


@functools.lru_cache(maxsize=8)
def _which(name: str, path: str) -> str | None:
    return shutil.which(name, path=path)


def _find_binary(openclaw_bin: str | None, env: Mapping[str, str]) -> Path | None:
    search_path = env.get("PATH", os.defpath)
    if openclaw_bin:
        candidate = Path(openclaw_bin).expanduser()
        found = _which(str(candidate), search_path) if candidate.parent == Path() else str(candidate)
        if not found or not Path(found).exists():
            raise env_error(f"--openclaw-bin {openclaw_bin}: no such executable",
                            "pass the path of the openclaw (or clawdbot) binary")
        return Path(found).absolute()
    for name in ("openclaw", "clawdbot"):
        found = _which(name, search_path)
        if found:
            return Path(found)
    return None


def _legacy_rules(package: Package | None) -> tuple[bool, bool, tuple[str, ...]]:
    """(OPENCLAW_HOME honoured, CLAWDBOT_* honoured, legacy state dirs) of the installed release, from its
    package version (the table only: discovery must stay cheap); without a package, every selector any
    release honoured (a stale selector then wins over the default, as on the oldest releases)."""
    if package is None:
        return True, True, LEGACY_STATE_DIRS
    caps = capmod.for_install(package.name, package.version, "package.json", package_root=None, state_dir=None)
    return caps.openclaw_home, caps.legacy_env, tuple(caps.legacy_state_dirs)


def _profile_name(profile: str | None, dev: bool, env: Mapping[str, str]) -> str | None:
    """The named profile (``--dev`` is ``dev``; else ``OPENCLAW_PROFILE``); ``default`` is no profile."""
    if dev:
        profile = "dev"
    if profile is None:
        profile = env.get("OPENCLAW_PROFILE") or None
    if profile is not None and profile != "default" and not PROFILE_RE.match(profile):
        raise usage_error(f"invalid profile name {profile!r:.80}",
                          "profile names are letters, digits, '-' and '_' (at most 64)")
    return None if profile == "default" else profile


def discover(*, profile: str | None = None, dev: bool = False, state_dir: str | None = None,
             config: str | None = None, openclaw_bin: str | None = None,
             env: Mapping[str, str] | None = None) -> Install:
    env = dict(os.environ if env is None else env)
    binary = _find_binary(openclaw_bin, env)
    package = _find_package(binary) if binary else None
    use_home_var, use_legacy_env, legacy_dirs = _legacy_rules(package)
    notes: list[str] = []
    home_var = env.get("OPENCLAW_HOME") if use_home_var else None
    if env.get("OPENCLAW_HOME") and not use_home_var:
        notes.append(f"OPENCLAW_HOME is set but {package.name if package else 'openclaw'} "
                     f"{package.version if package else ''} ignores it (honoured from 2026.2.9)")
    home = Path(home_var or env.get("HOME") or Path.home()).expanduser()

    profile = _profile_name(profile, dev, env)

    def expand(p: str) -> Path:
        return Path(p.replace("~", str(home), 1) if p.startswith("~") else p).expanduser().absolute()

    legacy_state = env.get("CLAWDBOT_STATE_DIR") if use_legacy_env else None
    legacy_config = env.get("CLAWDBOT_CONFIG_PATH") if use_legacy_env else None
    if not use_legacy_env and (env.get("CLAWDBOT_STATE_DIR") or env.get("CLAWDBOT_CONFIG_PATH")):
        notes.append("CLAWDBOT_STATE_DIR/CLAWDBOT_CONFIG_PATH are set but this release ignores them "
                     "(dropped in 2026.3.22)")
    if state_dir:
        sdir = expand(state_dir)
    elif profile and not env.get("OPENCLAW_STATE_DIR"):
        sdir = home / f".openclaw-{profile}"
    elif env.get("OPENCLAW_STATE_DIR"):
        sdir = expand(env["OPENCLAW_STATE_DIR"])
    elif legacy_state:
        sdir = expand(legacy_state)
    else:
        sdir = home / ".openclaw"
        if not sdir.exists():
            for legacy in legacy_dirs:
                if (home / legacy).exists():
                    sdir = home / legacy
                    break

    names = ["openclaw.json", *(f"{d.lstrip('.')}.json" for d in legacy_dirs)]
    if config:
        cpath = expand(config)
    elif env.get("OPENCLAW_CONFIG_PATH") and not (state_dir or (profile and not env.get("OPENCLAW_STATE_DIR"))):
        cpath = expand(env["OPENCLAW_CONFIG_PATH"])
    elif legacy_config and not state_dir:
        cpath = expand(legacy_config)
    else:
        cpath = next((sdir / n for n in names if (sdir / n).exists()),
                     sdir / ("clawdbot.json" if sdir.name == ".clawdbot" else "openclaw.json"))

    return Install(home=home, state_dir=sdir, config_path=cpath, profile=profile, binary=binary,
                   package=package, env=env, notes=tuple(notes))
