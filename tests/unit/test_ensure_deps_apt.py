"""scripts/ensure-deps.sh's apt part: what is missing is installed in ONE apt-get run, or named.

The script runs on a PATH holding only the basic tools it needs and a recording ``apt-get``: so
every command it looks up on PATH is "missing", and nothing is installed for real.
MOLTIR_ENSURE_DEPS_APT_ONLY=1 stops it after the apt part (no download).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-deps.sh"
# looked up on PATH only, so the restricted PATH makes each of them missing
ON_PATH = ("gnome-keyring", "dbus-daemon", "systemd-container", "podman", "openssh-client", "iproute2",
           "util-linux", "passwd", "sudo", "chromium", "fonts-liberation")
TOOLS = ("bash", "env", "id", "mkdir", "dirname", "printf", "chmod", "rm", "cat", "sh")


def _bin(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        (bindir / tool).symlink_to(found)
    (bindir / "python3").symlink_to(sys.executable)   # not a pyenv shim: that needs more on PATH
    log = tmp_path / "apt.log"
    (bindir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bindir / "apt-get").chmod(0o755)
    return bindir


def _run(tmp_path: Path, bindir: Path, *, ci: bool, user: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bindir), "MOLTIR_CACHE": str(tmp_path / "cache"), "MOLTIR_ENSURE_DEPS_APT_ONLY": "1",
           "CI": "true" if ci else "false"}
    argv = [*(user or []), str(bindir / "bash"), str(SCRIPT)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_as_root_every_missing_package_goes_into_one_apt_get_run(tmp_path: Path) -> None:
    if os.geteuid() != 0:   # make test installs apt packages as root only; CI runs as root
        if os.environ.get("CI") == "true":
            pytest.fail("this test needs root (the apt-get branch of ensure-deps.sh runs as root only)")
        pytest.skip("the apt-get branch of ensure-deps.sh runs as root only")
    bindir = _bin(tmp_path)
    res = _run(tmp_path, bindir, ci=True)
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "update -qq"
    assert len(calls) == 2 and calls[1].startswith("install -y -qq --no-install-recommends ")
    installed = calls[1].split()[4:]
    assert set(ON_PATH) <= set(installed)
    assert len(installed) == len(set(installed))
    assert "no service is started" in res.stderr


def test_without_root_the_packages_are_named_and_ci_fails() -> None:
    # its own directory, not tmp_path: pytest's base folder is private to root, and nobody must read it
    with tempfile.TemporaryDirectory(prefix="moltir-apt-") as top:
        _check_without_root(Path(top))


def _check_without_root(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    bindir = _bin(tmp_path)
    user: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run this test as root"
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache").chmod(0o777)
        user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    res = _run(tmp_path, bindir, ci=True, user=user)
    assert res.returncode == 1
    assert not (tmp_path / "apt.log").exists()
    line = next(ln for ln in res.stderr.splitlines() if "ERROR: missing:" in ln)
    assert all(f" {pkg}" in line for pkg in ON_PATH)
    assert "install them (e.g. 'sudo apt-get install" in line
    assert _run(tmp_path, bindir, ci=False, user=user).returncode == 0   # outside CI: a warning only
