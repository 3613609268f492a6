"""The out-of-band trigger through a real ``sshd`` on loopback, against a real gateway.

The test starts Debian's OpenSSH server itself: its own host key, config, ``authorized_keys`` (the line
``moltir trigger setup --key`` printed, nothing else) and pid file in tmp, in the foreground (``-D``) on a
free loopback port, killed at teardown. As root, sshd needs its privilege-separation directory
``/run/sshd`` (created when missing, as the Debian unit's ``RuntimeDirectory=sshd`` does) and
``PermitRootLogin`` for a key; ``UsePAM no`` and ``StrictModes no`` let it run from a tmp folder.

* the key with another command (``cat /etc/passwd``): refused, exit 2, nothing printed of the file, no
  case, the gateway still running and the config unchanged;
* the key with no command: ``moltir contain`` runs, the gateway goes down, and the case records the
  trigger (``case.json``'s ``trigger``: source, via ssh, client 127.0.0.1; the reason names it).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import LOOPBACK, free_port, port_is_open, wait_until
from tests.harness.prereq import missing_prerequisite
from tests.harness.secret_service import SecretService

SSHD = shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")


@dataclass
class Sshd:
    folder: Path
    port: int
    client_key: Path
    authorized_keys: Path
    proc: subprocess.Popen[bytes]

    def ssh(self, *command: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.client_key), "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={self.folder / 'known_hosts'}",
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
                f"{getpass.getuser()}@{LOOPBACK}", *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                "HOME": str(self.folder)})


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    if SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        missing_prerequisite("OpenSSH server/client not found (Debian: apt-get install openssh-server "
                             "openssh-client; scripts/ensure-deps.sh does it as root)")
    assert SSHD is not None
    folder = tmp_path / "sshd"
    folder.mkdir(mode=0o700)
    for name in ("host_ed25519", "client_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True,
                       timeout=60, capture_output=True)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    port = free_port()
    authorized = folder / "authorized_keys"
    authorized.write_text("")
    authorized.chmod(0o600)
    (folder / "sshd_config").write_text("\n".join([
        f"ListenAddress {LOOPBACK}:{port}", f"HostKey {folder / 'host_ed25519'}", f"PidFile {folder / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}", "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
        f"AllowUsers {getpass.getuser()}", "PrintMotd no", "LogLevel VERBOSE", ""]))
    log = (folder / "sshd.log").open("wb")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited {proc.returncode}: {(folder / 'sshd.log').read_text()[-800:]}")
            return port_is_open(port)
        wait_until(up, 30, what="sshd listening")
        yield Sshd(folder, port, folder / "client_ed25519", authorized, proc)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()


def _moltir(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


# The trigger and the notifications depend on no release difference (no capability row): one release
# keeps the suite within its time budget; 2026.1.29 passed too when this was written.
@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_forced_command_key_runs_contain_and_nothing_else(openclaw_home: OpenClawHome,
                                                          secret_service: SecretService, sshd: Sshd) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    setup = _moltir(env, home.root, "trigger", "setup", "--source", "phone-test", "--key",
                    str(sshd.client_key) + ".pub", "--json")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    line = moltir_json(setup.stdout)["line"]
    assert line.startswith('command="') and '",restrict ssh-ed25519 ' in line
    sshd.authorized_keys.write_text(line + "\n")
    cases = home.root / "moltir-home" / "cases"
    gw = Gateway(home).start()
    try:
        config_before = home.config_path.read_bytes()
        other = sshd.ssh("cat /etc/passwd")
        assert other.returncode == 2, other.stdout + other.stderr
        assert "refused 'cat /etc/passwd' and ran nothing" in other.stderr
        assert "root:" not in other.stdout
        assert port_is_open(home.port) and home.config_path.read_bytes() == config_before
        assert not cases.exists() or not any(cases.iterdir())

        pulled = sshd.ssh()
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr + (sshd.folder / "sshd.log").read_text()[-2000:]
        assert "contain: all 6 steps done" in pulled.stdout
        wait_until(lambda: not port_is_open(home.port), 30, what="gateway down after the trigger")
        status = moltir_json(_moltir(env, home.root, "status", "--json").stdout)
        assert status["status"] == "contained"
        case = Path(status["case"]["dir"])
        import json

        info = json.loads((case / "case.json").read_text())
        assert info["trigger"]["source"] == "phone-test"
        assert info["trigger"]["via"] == "ssh" and info["trigger"]["client"] == LOOPBACK
        assert info["reason"] == f"trigger: phone-test (via ssh from {LOOPBACK})"
        records = [json.loads(r) for r in (case / "journal.jsonl").read_text().splitlines()]
        assert any(r["event"] == "trigger" and r["source"] == "phone-test" for r in records)
        assert home.token not in pulled.stdout + pulled.stderr
    finally:
        gw.stop()
