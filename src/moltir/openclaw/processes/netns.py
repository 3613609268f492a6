"""Whether a process shares moltir's network namespace.

A port number names a socket only inside one network namespace: containers, ``ip netns`` hosts
and sandboxes can each hold a gateway on the same port. When moltir ties a process to the install
by its port (it cannot read that process's environment), a gateway in another namespace must not
count: its port is not the install's port here, and stopping it would stop someone else's bot.

``/proc/PID/ns/net`` names the namespace, but only the process's owner (or root) may read it.
``/proc/PID/net/tcp`` and ``tcp6`` are readable by everyone and list the sockets of the process's
namespace: the socket inodes are unique across namespaces, so two processes share a namespace
exactly when their tables list the same sockets. Unknown (no /proc, both tables empty) counts
as "same", the answer moltir gave before it asked.
"""

from __future__ import annotations

from pathlib import Path

_TABLES = ("tcp", "tcp6")
_LISTEN = "0A"  # st column of a listening TCP socket


def _ns_id(pid: int | str) -> int | None:
    try:
        return Path(f"/proc/{pid}/ns/net").stat().st_ino
    except OSError:
        return None


def _listen_inodes(pid: int | str) -> set[str] | None:
    """Inodes of the listening TCP sockets in ``pid``'s namespace; None when unreadable."""
    inodes: set[str] = set()
    readable = False
    for table in _TABLES:
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii", errors="replace").splitlines()
        except OSError:
            continue
        readable = True
        for line in lines[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and fields[9] != "0":
                inodes.add(fields[9])
    return inodes if readable else None


def same_netns(pid: int) -> bool:
    """Whether process ``pid`` is in moltir's network namespace (True when it cannot be told)."""
    theirs, ours = _ns_id(pid), _ns_id("self")
    if theirs is not None and ours is not None:
        return theirs == ours
    their_sockets, our_sockets = _listen_inodes(pid), _listen_inodes("self")
    if their_sockets is None or our_sockets is None or not (their_sockets or our_sockets):
        return True
    return bool(their_sockets & our_sockets)
