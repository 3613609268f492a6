"""Stop a process tree, bounded: SIGTERM the roots, wait, SIGKILL what is left."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil


@dataclass(frozen=True)
class TerminateResult:
    signalled: tuple[int, ...]  # got SIGTERM
    exited: tuple[int, ...]  # gone without SIGKILL
    killed: tuple[int, ...]  # needed SIGKILL
    survivors: tuple[int, ...]  # still alive after SIGKILL and its wait (should be empty)
    denied: tuple[int, ...]  # we were not allowed to signal these
    forced: bool  # a root (the gateway or its wrapper) needed SIGKILL
    elapsed_s: float
    events: tuple[dict[str, Any], ...] = field(default=())


def _alive(proc: psutil.Process) -> bool:
    """Still holding resources. A multi-threaded process whose main thread exited first shows as a
    zombie while its other threads are still being torn down (node: ~700 MB to unmap), and until
    they are gone its files and listening sockets stay open: that is not gone yet."""
    try:
        if not proc.is_running():
            return False
        if proc.status() != psutil.STATUS_ZOMBIE:
            return True
        return proc.num_threads() > 1
    except psutil.Error:
        return False


def _reap(procs: Iterable[psutil.Process]) -> None:
    """Collect the exit status of our own children (they would stay zombies otherwise)."""
    me = os.getpid()
    for p in procs:
        with contextlib.suppress(psutil.Error, ChildProcessError, OSError):
            if p.ppid() == me and p.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(p.pid, os.WNOHANG)


def wait_gone(procs: Sequence[psutil.Process], deadline: float, *,
              interval: float = 0.05) -> list[psutil.Process]:
    """Poll until every process in ``procs`` is gone or ``deadline`` (monotonic); return the alive."""
    alive = list(procs)
    while True:
        _reap(alive)
        alive = [p for p in alive if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(interval)


def terminate_tree(roots: Sequence[psutil.Process], *, timeout_s: float, kill_wait_s: float = 5.0,
                   children_grace_s: float = 2.0, signal_roots: bool = True,
                   on_event: Callable[[str, dict[str, Any]], None] | None = None) -> TerminateResult:
    """SIGTERM ``roots``, wait ``timeout_s``, then SIGKILL what is left of their trees.

    The trees are collected BEFORE any signal (children are re-parented once their parent
    dies). Only the roots get SIGTERM (the gateway drains its own workers); once every root
    is gone, descendants get ``children_grace_s`` to exit on their own. Whatever is still
    alive at the bound is SIGKILLed (newly spawned descendants of survivors included) and
    waited for ``kill_wait_s``. A process that exits (or was reused) meanwhile is skipped.
    ``signal_roots=False`` skips the SIGTERM (the caller already stopped them another way)
    and only waits and kills.
    """
    def emit(name: str, **fields: Any) -> None:
        events.append({"event": name, **fields})
        if on_event is not None:
            on_event(name, fields)

    def sigterm(p: psutil.Process) -> None:
        p.terminate()
        emit("proc.sigterm", pid=p.pid)

    def sigkill(p: psutil.Process) -> None:
        p.kill()
        emit("proc.sigkill", pid=p.pid, root=p.pid in root_pids)

    events: list[dict[str, Any]] = []
    start = time.monotonic()
    root_pids = [r.pid for r in roots]
    tree = _collect_tree(roots)
    denied: list[int] = []
    signalled = _signal_each(roots, sigterm, denied) if signal_roots else []
    leftovers = _leftovers(tree, root_pids, start + max(0.0, timeout_s), children_grace_s)
    killed = _signal_each(leftovers, sigkill, denied)
    survivors = wait_gone(leftovers, time.monotonic() + kill_wait_s) if leftovers else []
    _reap(tree.values())
    exited = [pid for pid in tree if pid not in killed and pid not in {s.pid for s in survivors}]
    return TerminateResult(
        signalled=tuple(signalled), exited=tuple(sorted(exited)), killed=tuple(killed),
        survivors=tuple(s.pid for s in survivors), denied=tuple(sorted(set(denied))),
        forced=any(pid in root_pids for pid in killed), elapsed_s=round(time.monotonic() - start, 3),
        events=tuple(events))


def _collect_tree(roots: Sequence[psutil.Process]) -> dict[int, psutil.Process]:
    """The roots and all their descendants, by pid, before any signal."""
    tree: dict[int, psutil.Process] = {}
    for root in roots:
        tree.setdefault(root.pid, root)
        with contextlib.suppress(psutil.Error):
            for child in root.children(recursive=True):
                tree.setdefault(child.pid, child)
    return tree


def _signal_each(procs: Sequence[psutil.Process], send: Callable[[psutil.Process], None],
                 denied: list[int]) -> list[int]:
    """``send`` a signal to each of ``procs``; returns the pids signalled. One that exited meanwhile is
    skipped; one moltir may not signal goes to ``denied``."""
    sent: list[int] = []
    for p in procs:
        try:
            send(p)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            denied.append(p.pid)
        else:
            sent.append(p.pid)
    return sent


def _leftovers(tree: dict[int, psutil.Process], root_pids: list[int], deadline: float,
               children_grace_s: float) -> list[psutil.Process]:
    """What of ``tree`` is still alive once the roots had until ``deadline`` (and, when they are all gone,
    their descendants ``children_grace_s`` more), with the descendants spawned meanwhile (added to ``tree``)."""
    alive_roots = wait_gone([tree[p] for p in root_pids], deadline)
    rest = [p for pid, p in tree.items() if pid not in root_pids]
    # once the roots are gone their workers normally follow within moments: give them a grace
    rest_alive = ([p for p in rest if _alive(p)] if alive_roots
                  else wait_gone(rest, time.monotonic() + children_grace_s))
    leftovers = [*alive_roots, *rest_alive]
    # pick up descendants spawned during the drain
    for p in list(leftovers):
        with contextlib.suppress(psutil.Error):
            for child in p.children(recursive=True):
                if child.pid not in tree:
                    tree[child.pid] = child
                    leftovers.append(child)
    return leftovers

