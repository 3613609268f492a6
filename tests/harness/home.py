"""An isolated OpenClaw home: HOME, state dir, TMPDIR, config, env, and the fakes it talks to."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5
from tests.harness.configs import ConfigParams, config_text
from tests.harness.fakellm import FakeLLM
from tests.harness.faketg import FakeTelegram
from tests.harness.net import LOOPBACK, free_port
from tests.harness.procs import processes_for
from tests.harness.releases import Release
from tests.harness.tls import TestCA, make_test_ca

# Passed through from the caller's environment when set; everything else is built from scratch.
# MOLTIR_TEST_RUN_ID marks every process of a `make test` run for the final leftover check.
PASSTHROUGH_VARS = ("LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "MOLTIR_TEST_RUN_ID")


@dataclass
class OpenClawHome:
    release: Release
    root: Path                 # everything of this home lives under here
    home: Path                 # HOME
    state_dir: Path            # OPENCLAW_STATE_DIR (= HOME/.openclaw)
    config_path: Path          # OPENCLAW_CONFIG_PATH
    tmpdir: Path               # TMPDIR
    log_file: Path             # logging.file in the config
    port: int
    token: str
    env: dict[str, str]        # run moltir / openclaw with exactly this
    telegram: FakeTelegram
    llm: FakeLLM
    ca: TestCA | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def openclaw_bin(self) -> Path:
        return self.release.openclaw_bin

    @property
    def config_params(self) -> ConfigParams:
        """What :func:`configs.config_text` was given for this home."""
        return ConfigParams(port=self.port, token=self.token, log_file=str(self.log_file),
                            telegram_url=self.telegram.url, llm_base_url=self.llm.base_url)

    def read_config(self) -> dict[str, Any]:
        data = json5.loads(self.config_path.read_text(encoding="utf-8"))
        assert isinstance(data, dict)
        return data

    def run_openclaw(self, *args: str, timeout: float = 120, check: bool = False,
                     env: Mapping[str, str] | None = None,
                     input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run this release's CLI with this home's env (never with a credential on argv)."""
        return subprocess.run([str(self.openclaw_bin), *args], env={**self.env, **(env or {})},
                              cwd=self.home, capture_output=True, text=True, timeout=timeout,
                              check=check, input=input)

    def validate_config(self) -> tuple[bool, str]:
        """(valid, detail). Where the release has it (``facts.config_validate_cli``):
        ``config validate --json``; else ``config get gateway.mode``, which exits 1 with
        "Config invalid" (2026.1.29) / "Invalid config" on a bad file."""
        if self.release.facts.config_validate_cli:
            proc = self.run_openclaw("config", "validate", "--json", timeout=60)
            try:
                valid = bool(json.loads(proc.stdout).get("valid"))
            except ValueError:
                valid = False
            return valid and proc.returncode == 0, proc.stdout + proc.stderr
        proc = self.run_openclaw("config", "get", "gateway.mode", timeout=60)
        out = proc.stdout + proc.stderr
        bad = "Config invalid" in out or "Invalid config" in out
        return proc.returncode == 0 and not bad and "local" in proc.stdout, out


def egress_env(proxy_url: str) -> dict[str, str]:
    """No auto-update, no colour, and the egress guard: proxy-aware code (Node's fetch with
    NODE_USE_ENV_PROXY, npm) goes to the fake at ``proxy_url``, which refuses and records every
    host but api.telegram.org; loopback goes direct; npm stays offline."""
    return {
        "NO_COLOR": "1",
        "OPENCLAW_NO_AUTO_UPDATE": "1",
        "NODE_USE_ENV_PROXY": "1",
        "HTTP_PROXY": proxy_url, "HTTPS_PROXY": proxy_url,
        "http_proxy": proxy_url, "https_proxy": proxy_url,
        "NO_PROXY": f"{LOOPBACK},localhost,::1", "no_proxy": f"{LOOPBACK},localhost,::1",
        "npm_config_offline": "true",
    }


def build_env(release: Release, home: Path, state_dir: Path, config_path: Path, tmpdir: Path,
              root: Path, proxy_url: str, ca: TestCA | None) -> dict[str, str]:
    env = {k: os.environ[k] for k in PASSTHROUGH_VARS if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "PATH": release.path_env(os.environ.get("PATH")),
        "HOME": str(home),
        "OPENCLAW_STATE_DIR": str(state_dir),
        "OPENCLAW_CONFIG_PATH": str(config_path),
        "TMPDIR": str(tmpdir),
        # moltir's own state/config/cache stay inside this test's tree.
        "XDG_STATE_HOME": str(root / "xdg" / "state"),
        "XDG_CONFIG_HOME": str(root / "xdg" / "config"),
        "XDG_DATA_HOME": str(root / "xdg" / "data"),
        "XDG_CACHE_HOME": str(root / "xdg" / "cache"),
        **egress_env(proxy_url),
        "npm_config_cache": str(tmpdir / "npm-cache"),
    })
    if ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca.ca_cert)
    # Shared compile caches, linked into this TMPDIR (neither has a usable env knob: jiti uses
    # os.tmpdir()/jiti; NODE_COMPILE_CACHE would make 2026.9.6 respawn itself under a wrapper).
    for name in ("jiti", "node-compile-cache"):
        shared = release.compile_cache / name
        shared.mkdir(parents=True, exist_ok=True)
        link = tmpdir / name
        if not link.exists():
            link.symlink_to(shared, target_is_directory=True)
    return env


def create_home(root: Path, release: Release, *, ca: TestCA | None = None,
                port: int | None = None, token: str | None = None) -> OpenClawHome:
    """Lay out a fresh home under ``root`` and start its fakes (stop them with :func:`close_home`)."""
    root = root.resolve()
    home, tmpdir = root / "home", root / "tmp"
    state_dir = home / ".openclaw"
    config_path = state_dir / "openclaw.json"
    log_file = state_dir / "logs" / "gateway.log"
    for d in (home, tmpdir, state_dir, log_file.parent):
        d.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    if not release.facts.api_root and ca is None:   # Telegram through proxy + CONNECT + TLS
        ca = make_test_ca(root / "ca")
    telegram = (FakeTelegram.with_tls(ca.leaf_cert, ca.leaf_key) if ca is not None else FakeTelegram()).start()
    llm = FakeLLM().start()
    try:
        port = port or free_port(span=4)      # 2026.1.29 and 2026.2.25 also listen on PORT+2, PORT+3
        token = token or f"test-token-{secrets.token_hex(20)}"
        params = ConfigParams(port=port, token=token, log_file=str(log_file),
                              telegram_url=telegram.url, llm_base_url=llm.base_url)  # = .config_params
        config_path.write_text(config_text(release.id, params), encoding="utf-8")
        config_path.chmod(0o600)
        env = build_env(release, home, state_dir, config_path, tmpdir, root, telegram.url, ca)
    except BaseException:
        telegram.stop()
        llm.stop()
        raise
    return OpenClawHome(release=release, root=root, home=home, state_dir=state_dir,
                        config_path=config_path, tmpdir=tmpdir, log_file=log_file, port=port,
                        token=token, env=env, telegram=telegram, llm=llm, ca=ca)


def global_lock_files(state_dir: Path) -> list[Path]:
    """Lock files a 2026.8.x+ gateway or CLI leaves OUTSIDE the home for ``state_dir``:
    ``/tmp/openclaw-state-locks-<uid>/{state,gateway}-lifecycle|state-handles.<h>.lock.sqlite``
    with ``h = sha256(<state>/state/openclaw.sqlite)[:8]``. The ``/tmp`` is hard-coded (TMPDIR is
    ignored); 0-byte SQLite lock files that stay after a clean stop."""
    db = os.path.realpath(state_dir / "state" / "openclaw.sqlite")
    digest = hashlib.sha256(db.encode()).hexdigest()[:8]
    return sorted(Path(f"/tmp/openclaw-state-locks-{os.getuid()}").glob(f"*.{digest}.lock.sqlite*"))


def close_home(h: OpenClawHome) -> None:
    h.telegram.stop()
    h.llm.stop()
    if not processes_for(h.state_dir):   # a live process may still hold them
        for lock in global_lock_files(h.state_dir):
            lock.unlink(missing_ok=True)


@contextlib.contextmanager
def openclaw_home_at(root: Path, release: Release, **kwargs: Any) -> Iterator[OpenClawHome]:
    h = create_home(root, release, **kwargs)
    try:
        yield h
    finally:
        close_home(h)
