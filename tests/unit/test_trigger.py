"""``moltir trigger``: the source name, the public key, the authorized_keys line (quoting, what is baked
in), the original-command check and what goes into the case. The real sshd: test_trigger_real.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from moltir.commands import trigger as trig
from moltir.errors import EXIT_USAGE, MoltirError
from moltir.openclaw import discover

PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ4Antk4PFkzTlmMjnK94PIa5wbernLeuDRGm8SFYnoC alice@phone"


@pytest.mark.parametrize("source", ["phone", "alice-iphone", "a.b_c@d", "x" * 64])
def test_good_sources(source: str) -> None:
    assert trig.check_source(source) == source


@pytest.mark.parametrize("source", ["", "two words", "x" * 65, "-flag", "a\x1b[2Jb", "a'b", 'a"b', "a;rm", "é"])
def test_bad_sources(source: str) -> None:
    with pytest.raises(MoltirError) as info:
        trig.check_source(source)
    assert info.value.exit_code == EXIT_USAGE and "\x1b" not in info.value.message


def test_public_key(tmp_path: Path) -> None:
    f = tmp_path / "k.pub"
    f.write_text(PUB + "\n")
    assert trig.read_public_key(f) == PUB
    f.write_text(PUB.replace("alice@phone", 'x" ,command="evil'))  # a comment cannot add options
    key = trig.read_public_key(f)
    assert '"' not in key and "," not in key
    f.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(MoltirError) as info:
        trig.read_public_key(f)
    assert info.value.exit_code == EXIT_USAGE and "is a private key" in info.value.message
    assert "b3BlbnNz" not in info.value.one_line()
    for bad in ("", "ssh-dss AAAA", f"{PUB}\n{PUB}\n", "ssh-ed25519 not*base64", "hello"):
        f.write_text(bad)
        with pytest.raises(MoltirError, match="not one OpenSSH public key line"):
            trig.read_public_key(f)
    with pytest.raises(MoltirError, match="cannot read it"):
        trig.read_public_key(tmp_path / "missing.pub")


def test_line_bakes_the_install_and_quotes_safely(tmp_path: Path) -> None:
    state = tmp_path / 'odd dir "with" $quotes'
    state.mkdir()
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path), "MOLTIR_HOME": str(tmp_path / "mh")})
    env = {"PATH": "/opt/node/bin:/usr/bin", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
           "OPENAI_API_KEY": "sk-not-baked"}
    command = trig.forced_command(install, "phone", ["/opt/moltir/bin/moltir"], env)
    line = trig.authorized_keys_line(command, PUB)
    assert line.startswith('command="') and line.endswith(f'",restrict {PUB}')
    assert "sk-not-baked" not in line
    # sshd unescapes \" in the option; the shell then reads exactly the argv moltir meant
    inner = line[len('command="'):line.index('",restrict ')].replace('\\"', '"').replace("\\\\", "\\")
    assert inner == command
    words = shlex.split(command)
    assert words[:4] == ["env", f"MOLTIR_HOME={tmp_path / 'mh'}", "PATH=/opt/node/bin:/usr/bin",
                         "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus"]
    assert words[4:9] == ["/opt/moltir/bin/moltir", "trigger", "run", "--source", "phone"]
    assert words[words.index("--state-dir") + 1] == str(state)
    with_notify = shlex.split(trig.forced_command(install, "phone", ["/m"], env, tmp_path / "n.notify"))
    assert with_notify[-2:] == ["--notify", f"@{tmp_path / 'n.notify'}"]


def test_control_characters_in_a_path_are_refused(tmp_path: Path) -> None:
    state = tmp_path / "a\nb"
    state.mkdir()
    install = discover(state_dir=str(state), env={"HOME": str(tmp_path)})
    with pytest.raises(MoltirError) as info:
        trig.forced_command(install, "phone", ["/m"], {})
    assert info.value.exit_code == EXIT_USAGE and "control characters" in info.value.message


@pytest.mark.parametrize("asked", [None, "", "  ", "contain", " contain "])
def test_original_command_allowed(asked: str | None) -> None:
    trig.check_original({} if asked is None else {"SSH_ORIGINAL_COMMAND": asked})


@pytest.mark.parametrize("asked", ["cat /etc/passwd", "contain; id", "contain --runbook x", "restore",
                                   "bash -i", "\x1b]0;x\x07"])
def test_original_command_refused(asked: str) -> None:
    with pytest.raises(MoltirError) as info:
        trig.check_original({"SSH_ORIGINAL_COMMAND": asked})
    assert info.value.exit_code == EXIT_USAGE and "ran nothing" in info.value.message
    assert "\x1b" not in info.value.message and "\x07" not in info.value.message


def test_record_and_reason() -> None:
    rec = trig.trigger_record("phone", {"SSH_CONNECTION": "203.0.113.7 51234 192.0.2.1 22"})
    assert rec == {"source": "phone", "via": "ssh", "client": "203.0.113.7", "client_port": 51234}
    assert trig.reason(rec) == "trigger: phone (via ssh from 203.0.113.7)"
    odd = trig.trigger_record("phone", {"SSH_CONNECTION": "x;rm$ 1 2 3"})
    assert odd == {"source": "phone", "via": "ssh"}
    assert trig.trigger_record("phone", {}) == {"source": "phone", "via": "local"}


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HOME": str(tmp_path / "home"), "MOLTIR_HOME": str(tmp_path / "mh"), **env}
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=full, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_cli_setup_and_refusals(tmp_path: Path) -> None:
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    (tmp_path / "k.pub").write_text(PUB)
    got = _cli(tmp_path, "trigger", "setup", "--state-dir", str(state), "--key", str(tmp_path / "k.pub"),
               "--notify", "ntfy://ntfy.sh/my-topic-s3cr3t", "--json")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)["data"]
    assert data["complete"] is True and data["line"].endswith(PUB)
    notify_file = Path(data["notify_file"])
    assert "s3cr3t" not in data["line"] and notify_file.read_text() == "ntfy://ntfy.sh/my-topic-s3cr3t\n"
    assert notify_file.stat().st_mode & 0o077 == 0
    plain = _cli(tmp_path, "trigger", "setup", "--state-dir", str(state))
    assert plain.returncode == 0 and trig.PLACEHOLDER in plain.stdout and "Run Script over SSH" in plain.stdout
    for args, words in ((["--source", "a b"], "--source a b"), (["--key", str(tmp_path / "nope.pub")], "cannot read")):
        bad = _cli(tmp_path, "trigger", "setup", "--state-dir", str(state), *args)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and words in bad.stderr
    before = sorted(p.name for p in (tmp_path / "mh").rglob("*"))
    refused = _cli(tmp_path, "trigger", "run", "--source", "phone", "--state-dir", str(state),
                   SSH_ORIGINAL_COMMAND="cat /etc/passwd", SSH_CONNECTION="127.0.0.1 5 127.0.0.1 22")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip() == ("moltir: this key only triggers containment; refused 'cat /etc/passwd' and ran "
                                      "nothing. connect with no command, or with the command 'contain'")
    assert sorted(p.name for p in (tmp_path / "mh").rglob("*")) == before  # no case, no lock
