"""The walk of a root: what is there to collect, and what is skipped and why.

The walk never leaves a root: every directory and file is opened relative to its parent's
descriptor with ``O_NOFOLLOW`` (``openat``), so a symlink anywhere below a root is recorded as
skipped, never followed. FIFOs, sockets and devices are skipped. In a shared temp dir
(``/tmp/openclaw``) or any world-writable dir, a file owned by another user than the install's
owner is skipped: it may be planted. A file met twice (overlapping roots, hard links) is taken once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from moltir.evidence.fileinfo import _cannot, _kind, _owner_name, _world_writable
from moltir.evidence.patterns import _Pattern, _patterns_for
from moltir.evidence.roots import Root, Sources
from moltir.evidence.rules import Rule


@dataclass(frozen=True)
class Found:
    """A candidate file: still to be opened relative to ``dir_fd`` (valid while yielded)."""

    root: Root
    rule: Rule
    source: str
    dir_fd: int
    name: str
    lst: os.stat_result


@dataclass(frozen=True)
class Skip:
    source: str
    reason: str
    root: str = ""
    category: str = ""


class _Walker:
    def __init__(self, sources: Sources, product: str, exclude: Sequence[Path] = ()) -> None:
        self.sources = sources
        self.product = product
        # A file met twice is copied once. Through two roots that overlap (config dir == state dir) it is
        # recognised by its path (an earlier root's rule matches it: _earlier_root_took); a hard link
        # (st_nlink > 1) by (dev, inode) -> the source it was taken as. Nothing is remembered of the
        # other files: memory does not grow with their number.
        self.seen: dict[tuple[int, int], str] = {}
        self.overlapping = _overlapping_roots(sources.roots)
        self.real_roots: dict[str, str] = {}  # root key -> its real path, ending in "/"
        for r in sources.roots:
            with contextlib.suppress(OSError, ValueError):
                self.real_roots[r.key] = os.path.realpath(r.path).rstrip("/") + "/"
        self.walked: list[Root] = []
        self.patterns: dict[str, list[_Pattern]] = {}
        self._took_folder: tuple[str, str] = ("", "")
        self._took_candidates: list[tuple[int, list[_Pattern]]] = []
        self.exclude: set[tuple[int, int]] = set()
        for p in exclude:
            with contextlib.suppress(OSError):
                st = Path(p).stat()
                self.exclude.add((st.st_dev, st.st_ino))

    def walk(self, root: Root) -> Iterator[Found | Skip]:
        patterns = _patterns_for(root, self.product)
        if not patterns:
            return
        self.walked.append(root)
        try:
            top = self._open_root(root)
        except _RootSkip as skip:
            if skip.reason:
                yield Skip(str(root.path), skip.reason, root.key)
            return
        try:
            yield from self._walk_dir(root, top, str(root.path), (), patterns)
        finally:
            os.close(top)

    def _open_root(self, root: Root) -> int:
        path = root.path
        try:
            lst = os.lstat(path)
        except FileNotFoundError:
            raise _RootSkip("") from None
        except OSError as exc:
            raise _RootSkip(f"cannot read the folder: {exc.strerror}") from None
        if stat.S_ISLNK(lst.st_mode):
            if root.shared or _world_writable(path.parent):
                try:
                    target = str(path.readlink())
                except OSError:
                    target = "?"
                where = "a shared temp folder" if root.shared else "a world-writable folder"
                raise _RootSkip(f"symlink to {target!r} where {where} is expected (not followed: anyone could "
                                "have planted it)")
            path = Path(os.path.realpath(path))  # the user's own choice, e.g. ~/.openclaw -> /data/openclaw
        elif not stat.S_ISDIR(lst.st_mode):  # e.g. a FIFO or a file planted as /tmp/openclaw: say so
            what = "a regular file" if stat.S_ISREG(lst.st_mode) else f"a {_kind(lst.st_mode)}"
            raise _RootSkip(f"{what} where a folder is expected (not opened)")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                raise _RootSkip("") from None
            if root.shared and exc.errno in (errno.EACCES, errno.EPERM) and lst.st_uid != self.sources.expected_uid:
                owner = _owner_name(lst.st_uid) or f"uid {lst.st_uid}"
                raise _RootSkip(f"cannot open the folder: permission denied (owned by {owner}, mode "
                                f"{stat.S_IMODE(lst.st_mode):04o}): another user's folder, where OpenClaw does not "
                                "log for this install (it falls back to <tmp>/openclaw-<uid>, collected)") from None
            raise _RootSkip(_cannot("open the folder", exc, lst)) from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in self.exclude:
            os.close(fd)
            raise _RootSkip("")
        return fd

    def _walk_dir(self, root: Root, dfd: int, dir_path: str, rel: tuple[str, ...],
                  patterns: list[_Pattern]) -> Iterator[Found | Skip]:
        try:
            with os.scandir(dfd) as it:
                entries = sorted(e.name for e in it)
        except OSError as exc:
            yield Skip(dir_path, f"cannot list the folder: {exc.strerror}", root.key)
            return
        dir_st = os.fstat(dfd)
        for name in entries:
            source = f"{dir_path.rstrip('/')}/{name}"
            child = (*rel, name)
            try:
                lst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # vanished since the listing: nothing to say
                    yield Skip(source, f"cannot stat: {exc.strerror}", root.key)
                continue
            if stat.S_ISDIR(lst.st_mode):
                yield from self._walk_subdir(root, dfd, name, source, child, lst, patterns)
            else:
                yield from self._judge_entry(root, dfd, dir_st, name, source, child, lst, patterns)

    def _walk_subdir(self, root: Root, dfd: int, name: str, source: str, child: tuple[str, ...],
                     lst: os.stat_result, patterns: list[_Pattern]) -> Iterator[Found | Skip]:
        """The folder ``name`` of ``dfd``: walked when a pattern could match below it."""
        if (lst.st_dev, lst.st_ino) in self.exclude:
            return
        sub = [p for p in patterns if p.may_descend(child)]
        if not sub:
            hit = next((p for p in patterns if p.match(child)), None)
            if hit is not None:  # e.g. logging.file naming a folder: say so, do not stay silent
                yield Skip(source, "a folder where a file is expected (not collected)", root.key,
                           hit.rule.category)
            return
        try:
            cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            reason = ("replaced by a symlink during the walk (not followed)" if exc.errno == errno.ELOOP
                      else _cannot("open the folder", exc, lst))
            yield Skip(source, reason, root.key)
            return
        try:
            cst = os.fstat(cfd)
            if (cst.st_dev, cst.st_ino) != (lst.st_dev, lst.st_ino):
                yield Skip(source, "replaced during the walk", root.key)
                return
            yield from self._walk_dir(root, cfd, source, child, sub)
        finally:
            os.close(cfd)

    def _judge_entry(self, root: Root, dfd: int, dir_st: os.stat_result, name: str, source: str,
                     child: tuple[str, ...], lst: os.stat_result, patterns: list[_Pattern]) -> Iterator[Found | Skip]:
        """An entry of ``dfd`` that is not a folder: found when a pattern matches it and it may be taken."""
        rel_s = "/".join(child)
        pat = next((p for p in patterns if p.match_path(rel_s)), None)
        if pat is None:
            if stat.S_ISLNK(lst.st_mode) and any(p.may_descend(child) for p in patterns):
                yield Skip(source, f"symlink to {_readlink(name, dfd)!r} where a folder to collect "
                           "could be (not followed)", root.key)
            return
        cat = pat.rule.category
        if stat.S_ISLNK(lst.st_mode):
            yield Skip(source, f"symlink to {_readlink(name, dfd)!r} (not followed: it may leave the "
                       "collected folders)", root.key, cat)
        elif not stat.S_ISREG(lst.st_mode):
            yield Skip(source, f"{_kind(lst.st_mode)}, not a regular file (not opened)", root.key, cat)
        elif root.key in self.overlapping and self._earlier_root_took(root, rel_s):
            return  # the same file through two overlapping roots: taken (or skipped) the first time
        elif (track := lst.st_nlink > 1) and (lst.st_dev, lst.st_ino) in self.seen:
            first = self.seen[(lst.st_dev, lst.st_ino)]
            if first != source:
                yield Skip(source, f"hard link to {first} (copied once, under that name)", root.key, cat)
        elif lst.st_uid != self.sources.expected_uid and (root.shared or dir_st.st_mode & stat.S_IWOTH):
            where = "a world-writable folder" if dir_st.st_mode & stat.S_IWOTH else "a shared temp folder"
            yield Skip(source, f"owned by uid {lst.st_uid}, not the install's owner (uid "
                       f"{self.sources.expected_uid}), in {where}: may be planted", root.key, cat)
        else:
            if track:
                self.seen[(lst.st_dev, lst.st_ino)] = source
            yield Found(root, pat.rule, source, dfd, name, lst)

    def _earlier_root_took(self, root: Root, rel: str) -> bool:
        """Did a root walked before ``root`` match this file (``rel`` under ``root``) with one of its rules?

        The earlier roots' patterns that could match below this file's folder are worked out once per
        folder (the walk lists a folder's files together), so a file costs a match or two, not one per
        rule of every earlier root."""
        mine = self.real_roots.get(root.key)
        if mine is None:
            return False
        path = mine + rel
        folder = path[:path.rfind("/") + 1]
        if self._took_folder != (root.key, folder):
            candidates: list[tuple[int, list[_Pattern]]] = []
            for other in self.walked[:-1]:
                base = self.real_roots.get(other.key)
                if other.key == root.key or base is None or not folder.startswith(base):
                    continue
                patterns = self.patterns.get(other.key)
                if patterns is None:
                    patterns = self.patterns[other.key] = _patterns_for(other, self.product)
                below = tuple(folder[len(base):].split("/")[:-1])
                patterns = [p for p in patterns if p.may_descend(below)] if below else patterns
                if patterns:
                    candidates.append((len(base), patterns))
            self._took_folder, self._took_candidates = (root.key, folder), candidates
        return any(p.match_path(path[n:]) for n, patterns in self._took_candidates for p in patterns)


def _overlapping_roots(roots: Sequence[Root]) -> set[str]:
    """Keys of the roots whose folder is, or is inside or around, another root's folder (real paths)."""
    real: list[tuple[str, tuple[str, ...]]] = []
    for r in roots:
        try:
            real.append((r.key, Path(os.path.realpath(r.path)).parts))
        except (OSError, ValueError):
            real.append((r.key, ()))  # cannot tell: count it as overlapping (an empty path prefixes all)
    out: set[str] = set()
    for i, (ka, pa) in enumerate(real):
        for kb, pb in real[i + 1:]:
            n = min(len(pa), len(pb))
            if pa[:n] == pb[:n]:
                out.update((ka, kb))
    return out


class _RootSkip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _readlink(name: str, dfd: int) -> str:
    try:
        return os.readlink(name, dir_fd=dfd)
    except OSError:
        return "?"
