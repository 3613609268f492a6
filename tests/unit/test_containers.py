"""Which container engines moltir asks (moltir.openclaw.containers.available): rootless podman only for
a user who has used it, so that asking does not create podman storage or leave its pause process
(catatonit) behind on a host where the user never ran podman (seen on the fleet test's hosts)."""

from __future__ import annotations

import os
from pathlib import Path

from moltir.openclaw import containers


def _bin(tmp_path: Path, *names: str) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        os.chmod(tool, 0o755)
    return str(folder)


def test_rootless_podman_is_asked_only_when_the_user_has_used_it(tmp_path: Path) -> None:
    env = {"PATH": _bin(tmp_path, "podman", "docker"), "HOME": str(tmp_path / "home")}
    assert containers.available(env, euid=1000) == ["docker"]
    assert containers.available(env, euid=0) == ["podman", "docker"]
    (tmp_path / "home" / ".local" / "share" / "containers" / "storage").mkdir(parents=True)
    assert containers.available(env, euid=1000) == ["podman", "docker"]


def test_a_storage_conf_or_xdg_data_home_counts_too(tmp_path: Path) -> None:
    env = {"PATH": _bin(tmp_path, "podman"), "HOME": str(tmp_path / "home"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    assert containers.available(env, euid=1000) == []
    (tmp_path / "data" / "containers" / "storage").mkdir(parents=True)
    assert containers.available(env, euid=1000) == ["podman"]
    env2 = {"PATH": env["PATH"], "HOME": str(tmp_path / "home2")}
    (tmp_path / "home2" / ".config" / "containers").mkdir(parents=True)
    (tmp_path / "home2" / ".config" / "containers" / "storage.conf").write_text("[storage]\n")
    assert containers.available(env2, euid=1000) == ["podman"]
