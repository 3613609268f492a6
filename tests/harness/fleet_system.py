"""The fleet harness's system plumbing (root): network namespaces, processes, files, and the venv of moltir
the hosts' users run. See :mod:`tests.harness.fleet` for the whole lab."""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata as md
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


# ---- namespaces ---------------------------------------------------------------------------------

def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread that has joined the network namespace ``netns`` (setns(2) acts on
    the calling thread only). Sockets ``fn`` creates stay in that namespace after the thread ends:
    that is how the fakes of a host listen on the namespace's loopback while served from this process."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns:{netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: rc {proc.returncode}: {proc.stderr.strip()}")
    return proc


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address in or a route to (the default route excepted)."""
    nets: list[ipaddress.IPv4Network] = []
    for entry in json.loads(ip("-j", "-4", "addr").stdout or "[]"):
        for info in entry.get("addr_info", []):
            if info.get("family") == "inet":
                nets.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.IPv4Network(dst, strict=False))
    return nets


def pick_subnet(rng: random.Random | None = None) -> ipaddress.IPv4Network:
    """A private 10.X.Y.0/24 that overlaps nothing this machine has an address in or a route to."""
    rng = rng or random.Random()
    used = used_networks()
    for _ in range(500):
        cand = ipaddress.IPv4Network(f"10.{rng.randint(64, 250)}.{rng.randint(0, 255)}.0/24")
        if not any(cand.overlaps(u) for u in used):
            return cand
    raise RuntimeError("no unused private /24 found under 10.64.0.0/10")


# ---- processes ----------------------------------------------------------------------------------

def procs_of_uid(uid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.info["uids"] is None:
                continue
            if uid in (proc.info["uids"].real, proc.info["uids"].effective):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def procs_in_netns(netns: str) -> list[psutil.Process]:
    out = ip("netns", "pids", netns, check=False).stdout.split()
    procs = []
    for pid in out:
        with contextlib.suppress(psutil.NoSuchProcess, ValueError):
            p = psutil.Process(int(pid))
            if p.status() != psutil.STATUS_ZOMBIE:
                procs.append(p)
    return procs


def terminate(procs: Sequence[psutil.Process], timeout: float = 5.0) -> list[int]:
    """SIGTERM, wait ``timeout``, SIGKILL what is left; returns the pids that needed SIGKILL."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _gone, alive = psutil.wait_procs(list(procs), timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in alive]


def describe(procs: Sequence[psutil.Process]) -> str:
    parts = []
    for p in procs:
        try:
            parts.append(f"{p.pid}:{p.name()}:{' '.join(a for a in p.cmdline() if a)[:100]}")
        except psutil.Error:
            parts.append(f"{p.pid}:?")
    return ", ".join(parts) or "none"


def chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(d, name), uid, gid)


def rmtree(path: Path) -> None:
    """rm -rf that also handles read-only evidence folders (0500) of sealed cases."""
    if not path.exists():
        return
    for d, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
    shutil.rmtree(path, ignore_errors=True)


# ---- the hosts' moltir ----------------------------------------------------------------------------

def _requirement_names(dist: md.Distribution) -> list[str]:
    from packaging.requirements import Requirement  # ansible-core's dependency, in the test venv

    names = []
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        names.append(req.name)
    return names


def _dependency_closure(root: str = "moltir") -> list[md.Distribution]:
    """The installed distributions ``root`` needs on this platform (not ``root`` itself)."""
    seen: dict[str, md.Distribution] = {}
    todo = _requirement_names(md.distribution(root))
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = md.distribution(name)
        seen[key] = dist
        todo += _requirement_names(dist)
    return list(seen.values())


def build_moltir_venv(dest: Path, bin_dir: Path) -> Path:
    """A venv of Debian's python3 at ``dest`` holding a copy of this repository's moltir and of its
    installed dependencies; ``bin_dir/moltir`` and ``bin_dir/moltir-secret`` run it. Returns its python."""
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(dest)], check=True,
                   capture_output=True, timeout=120)
    python = dest / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for dist in _dependency_closure():
        base = Path(str(dist.locate_file(""))).resolve()
        for rel in dist.files or []:
            src = Path(str(dist.locate_file(rel))).resolve()
            if base not in src.parents or "__pycache__" in src.parts or not src.is_file():
                continue  # console scripts in ../../bin, compiled caches
            target = site / src.relative_to(base)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    shutil.copytree(REPO / "src" / "moltir", site / "moltir", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(python), "-m", "compileall", "-q", "-j0", str(site)], check=False, capture_output=True,
                   timeout=300)
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, entry in (("moltir", "moltir.entry"), ("moltir-secret", "moltir.secret_helper")):
        script = bin_dir / name
        script.write_text(f"#!{python}\nimport sys\nfrom {entry} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    for d, dirs, files in os.walk(dest):
        for name in dirs:
            os.chmod(os.path.join(d, name), 0o755)
        for name in files:
            path = os.path.join(d, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    return python



@dataclass
class Daemon:
    """A background process the harness started (its argv kept for messages)."""

    name: str
    proc: subprocess.Popen[Any]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=10)



def remove_shared_tmp_files(uid: int) -> list[str]:
    """What OpenClaw writes outside TMPDIR for a uid (``/tmp/openclaw-state-locks-<uid>``, the default log
    folder's files, a per-user ``/tmp/openclaw-<uid>``): removed. Returns notes for anything else found."""
    notes = []
    for name in (f"openclaw-state-locks-{uid}", f"openclaw-{uid}"):
        rmtree(Path("/tmp") / name)
    shared = Path("/tmp/openclaw")
    if shared.is_dir():
        if shared.stat().st_uid == uid:
            rmtree(shared)
        else:
            for p in shared.iterdir():
                with contextlib.suppress(OSError):
                    if p.lstat().st_uid == uid:
                        rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for top in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        with contextlib.suppress(OSError):
            for p in top.iterdir():
                with contextlib.suppress(OSError):
                    if p.lstat().st_uid == uid:
                        notes.append(f"removed {p} (left by uid {uid})")
                        rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    return notes

