"""The out-of-band trigger: containment started over SSH from a phone, not through the (possibly
compromised) chat channel.

``moltir trigger setup`` prints one ``authorized_keys`` line::

    command="env MOLTIR_HOME=... PATH=... /abs/moltir trigger run --source phone --state-dir ...",restrict KEY

``restrict`` turns off port, agent and X11 forwarding and the PTY; ``command=`` makes sshd run that
command whatever the client asked for. The forced command (``moltir trigger run``) reads what the
client asked for from ``SSH_ORIGINAL_COMMAND``: empty or ``contain`` runs ``moltir contain --yes
--reason "trigger: SOURCE ..."``; anything else is refused (exit 2, one line) and nothing runs. The
source, how it came (``ssh``) and the client address (from ``SSH_CONNECTION``) go into the case:
``case.json``'s ``trigger`` field for a new case, a ``trigger`` journal record in every case.

Baked into the command, because sshd starts it with almost no environment: the install options
(state dir, config, profile, openclaw binary) as resolved here, ``MOLTIR_HOME`` and ``PATH`` (like the
drill schedule), ``DBUS_SESSION_BUS_ADDRESS`` when set (the keyring contain rotates the token into),
and ``--notify @FILE`` when ``setup`` was given ``--notify`` (the URLs in a 0600 file, not in the line).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from moltir import paths
from moltir.errors import usage_error
from moltir.fsutil import atomic_write, ensure_private_dir
from moltir.text import shown

SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")
ALLOWED_ORIGINAL = ("", "contain")
BAKED_ENV = ("PATH", "DBUS_SESSION_BUS_ADDRESS")
PLACEHOLDER = "ssh-ed25519 PASTE-THE-PHONE-PUBLIC-KEY-HERE"


def check_source(source: str) -> str:
    if not SOURCE_RE.match(source):
        raise usage_error(f"--source {shown(source, 80)}: use 1-64 letters, digits, '.', '_', '@' or '-' "
                          "(starting with a letter or digit)", "for example --source phone or --source alice-iphone")
    return source


def read_public_key(path: Path) -> str:
    """The one public key in ``path`` (``TYPE BASE64 [comment]``); a private key is refused unread."""
    try:
        data = path.read_bytes()[:16384]
    except OSError as exc:
        raise usage_error(f"--key {shown(path, 200)}: cannot read it ({exc.strerror})",
                          "name the phone's public key file (id_ed25519.pub)") from None
    if b"PRIVATE KEY" in data:
        raise usage_error(f"--key {shown(path, 200)} is a private key",
                          "give the public key (the .pub file, or 'ssh-keygen -y -f KEY' prints it); "
                          "the private key stays on the phone")
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()
             and not line.strip().startswith("#")]
    fields = lines[0].split() if len(lines) == 1 else []
    ok = len(fields) >= 2 and fields[0] in KEY_TYPES and re.fullmatch(r"[A-Za-z0-9+/]+={0,3}", fields[1])
    if not ok:
        raise usage_error(f"--key {shown(path, 200)}: not one OpenSSH public key line ('TYPE BASE64 [comment]')",
                          f"types: {', '.join(KEY_TYPES[:3])} ...; one key per file")
    comment = re.sub(r"[^A-Za-z0-9_.@-]", "_", " ".join(fields[2:]))[:64]
    return " ".join([fields[0], fields[1], *([comment] if comment else [])])


def _safe_arg(value: str, what: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise usage_error(f"{what} {shown(value, 200)} holds control characters, which cannot go into an "
                          "authorized_keys line", "move the install to a path without them")
    return shlex.quote(value)


def run_argv(install: Any, source: str, moltir: Sequence[str], notify_file: Path | None = None) -> list[str]:
    argv = [*moltir, "trigger", "run", "--source", source, "--state-dir", str(install.state_dir),
            "--config", str(install.config_path)]
    if install.profile:
        argv += ["--profile", install.profile]
    if install.binary is not None:
        argv += ["--openclaw-bin", str(install.binary)]
    if notify_file is not None:
        argv += ["--notify", f"@{notify_file}"]
    return argv


def forced_command(install: Any, source: str, moltir: Sequence[str], env: Mapping[str, str],
                   notify_file: Path | None = None) -> str:
    baked = {"MOLTIR_HOME": str(paths.moltir_home(install.env))}
    baked.update({k: env[k] for k in BAKED_ENV if env.get(k)})
    words = ["env", *(f"{k}={_safe_arg(v, k)}" for k, v in baked.items())]
    words += [_safe_arg(a, "the path") for a in run_argv(install, source, moltir, notify_file)]
    return " ".join(words)


def authorized_keys_line(command: str, public_key: str) -> str:
    escaped = command.replace("\\", "\\\\").replace('"', '\\"')
    return f'command="{escaped}",restrict {public_key}'


def notify_file(install: Any, source: str) -> Path:
    return paths.moltir_home(install.env) / "trigger" / f"{install.key}-{source}.notify"


def store_notify(install: Any, source: str, urls: Sequence[str]) -> Path:
    """The trigger's ``--notify`` URLs in a 0600 file (a URL may hold a key: never in the line itself)."""
    path = notify_file(install, source)
    ensure_private_dir(path.parent)
    atomic_write(path, ("".join(f"{u}\n" for u in urls)).encode("utf-8"), mode=0o600)
    return path


def recipe(user: str, host: str, source: str) -> list[str]:
    return [
        f"iPhone (Shortcuts): new shortcut 'Contain {source}' > action 'Run Script over SSH': host {host}, "
        f"port 22, user {user}, authentication 'SSH Key' (Shortcuts makes an ed25519 key: 'Share Public Key', "
        "save it, run this setup again with --key FILE), script: contain. Add it to the home screen.",
        "Android (Termux): pkg install openssh; ssh-keygen -t ed25519 -f ~/.ssh/moltir_trigger; copy "
        "~/.ssh/moltir_trigger.pub here and run this setup again with --key FILE; then put "
        f"'ssh -i ~/.ssh/moltir_trigger {user}@{host} contain' in ~/.shortcuts/contain (Termux:Widget "
        "puts it on the home screen).",
        "Append the line to ~/.ssh/authorized_keys of this user on this host; test it once with a drill "
        "window in mind: it really contains (restore with 'moltir restore').",
    ]


def check_original(env: Mapping[str, str]) -> None:
    """Refuse (exit 2) any command the SSH client asked for other than nothing or ``contain``."""
    asked = env.get("SSH_ORIGINAL_COMMAND")
    if asked is None or asked.strip() in ALLOWED_ORIGINAL:
        return
    raise usage_error(f"this key only triggers containment; refused '{shown(asked, 80)}' and ran nothing",
                      "connect with no command, or with the command 'contain'")


def trigger_record(source: str, env: Mapping[str, str]) -> dict[str, Any]:
    """What goes into the case: the source, how it came and from where (``SSH_CONNECTION``)."""
    conn = env.get("SSH_CONNECTION", "").split()
    record: dict[str, Any] = {"source": source, "via": "ssh" if conn else "local"}
    if len(conn) == 4 and re.fullmatch(r"[0-9A-Fa-f:.%a-z]{1,64}", conn[0]) and conn[1].isdigit():
        record["client"] = conn[0]
        record["client_port"] = int(conn[1])
    return record


def reason(record: Mapping[str, Any]) -> str:
    where = f" from {record['client']}" if record.get("client") else ""
    return f"trigger: {record['source']} (via {record['via']}{where})"
