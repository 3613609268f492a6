"""A gateway in another network namespace on the install's port number is not the install's gateway.

Seen on the fleet hosts (2026-12-06): fresh namespaces hand out the same ports, and moltir, run as
a user who cannot read the other gateway's environment, tied another namespace's gateway to its
install by the port number. Here: two gateway-named listeners on one port number, one in moltir's
namespace and one in a namespace of its own, both of a user (nobody) whose environment and sockets
moltir, run as a third user, cannot read. Only the first is the install's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.harness.net import free_port
from tests.harness.prereq import missing_prerequisite

from moltir.openclaw.processes.netns import same_netns

GATEWAY_USER = 65534     # nobody: owns both listeners
MOLTIR_USER = 65533      # another user: cannot read nobody's environment or sockets

LISTENER = textwrap.dedent("""
    import ctypes, socket, sys
    ctypes.CDLL(None).prctl(15, b"openclaw-gateway", 0, 0, 0)
    s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
    print("ready", flush=True)
    sys.stdin.read()   # until the test closes our stdin
""")

CHECK = textwrap.dedent("""
    import json, sys
    from moltir.openclaw import discover
    from moltir.openclaw.processes import find_gateways
    from moltir.openclaw.processes.netns import same_netns
    env = json.loads(sys.argv[1])
    found = find_gateways(discover(env=env))
    print(json.dumps({"found": [[g.pid, g.matched_by] for g in found],
                      "same": {p: same_netns(int(p)) for p in sys.argv[2:]}}))
""")


def _setpriv(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


@pytest.fixture
def workdir() -> Iterator[Path]:
    if os.geteuid() != 0:
        missing_prerequisite("needs root: other users' processes and a network namespace")
    for tool in ("setpriv", "unshare", "ip"):
        if shutil.which(tool) is None:
            missing_prerequisite(f"needs {tool}")
    root = Path(tempfile.mkdtemp(prefix="moltir-netns-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _listener(argv: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", argv
    return proc


def _install_env(root: Path, port: int) -> dict[str, str]:
    state = root / "home" / ".openclaw"
    state.mkdir(parents=True)
    (state / "openclaw.json").write_text(json.dumps({"gateway": {"port": port, "mode": "local"}}))
    for path in (root / "home", state, state / "openclaw.json"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return {"HOME": str(root / "home"), "OPENCLAW_STATE_DIR": str(state),
            "OPENCLAW_CONFIG_PATH": str(state / "openclaw.json"), "TMPDIR": str(root), "PATH": ""}


def test_a_gateway_in_another_namespace_on_the_same_port_is_not_the_installs(workdir: Path) -> None:
    port = free_port()
    script = workdir / "listener.py"
    script.write_text(LISTENER)
    script.chmod(0o644)
    python = [sys.executable, str(script), str(port)]
    here = _listener([*_setpriv(GATEWAY_USER), *python])
    elsewhere = _listener(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                           *_setpriv(GATEWAY_USER), *python])
    try:
        assert same_netns(here.pid) and not same_netns(elsewhere.pid)   # root: reads /proc/PID/ns/net
        env = _install_env(workdir, port)
        done = subprocess.run([*_setpriv(MOLTIR_USER), sys.executable, "-c", CHECK, json.dumps(env),
                               str(here.pid), str(elsewhere.pid)],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": os.defpath, "HOME": str(workdir)}, cwd=workdir)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        # another user: the namespace is told from the sockets /proc/PID/net/tcp lists
        assert out["same"] == {str(here.pid): True, str(elsewhere.pid): False}
        # (other gateway-named processes moltir's user cannot inspect are reported too while the
        # port's owner is invisible: the gateways of other tests on this machine may appear)
        found = dict(out["found"])
        assert found.get(here.pid) == "port", out
        assert elsewhere.pid not in found, (out, elsewhere.pid)
    finally:
        for proc in (here, elsewhere):
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
