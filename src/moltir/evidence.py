"""Evidence: collect an OpenClaw install's logs, transcripts, state and config into a sealed case.

What is collected lives in ONE table, :data:`RULES` (root, glob, category): read it to see at
a glance what a snapshot takes. The roots are resolved per install by :func:`resolve_roots`.

How a file is copied (:func:`_copy_fd`): one read pass with a fixed 1 MiB buffer that hashes
(SHA-256) and writes the same bytes. The walk never leaves a root: every directory and file
is opened relative to its parent's descriptor with ``O_NOFOLLOW`` (``openat``), so a symlink
anywhere below a root is recorded as skipped, never followed. Only regular files are opened
(``lstat`` first, ``fstat`` after open must show the same inode); FIFOs, sockets and devices
are skipped, and ``O_NONBLOCK`` keeps a FIFO swapped in between the two from hanging the
snapshot; a file of 64 MiB or more that is mostly holes (sparse) is skipped, not copied
(:func:`_hole_fraction`). In a shared temp dir (``/tmp/openclaw``) or any world-writable dir, a file owned by
another user than the install's owner is skipped: it may be planted. ``O_NOATIME`` is used
where permitted; the copy gets the source's atime/mtime; ``fstat`` before and after flags
``changed_during_copy``.

The case folder after a snapshot::

    evidence/fs/<absolute source path>       copies, original layout (files 0400, dirs 0500)
    evidence/journald/<unit>.json            journalctl --user -u <unit> -o json (bounded)
    evidence/sqlite-backup/<absolute path>   consistent copies (sqlite3 backup API), only when
                                             the gateway was running during the snapshot
    manifest.json   collector, host, clocks, roots, rules, files (+ what volatile/, preimage/,
                    audit/ already held), credentials listed, skipped entries with reasons
    SHA256SUMS      coreutils format, paths relative to the case folder (``sha256sum -c``)
    seal.json       sha256 of manifest.json and SHA256SUMS, journal head, sealed time

A snapshot creates ``evidence/INCOMPLETE`` BEFORE copying anything and removes it only after
``seal.json`` is written: a crash, a full disk or Ctrl-C leaves the case marked incomplete and
unsealed, never a manifest that lies; a half-written copy is removed. Running the snapshot
again moves the incomplete attempt's copies aside (``evidence.attempt-<n>/``, kept, named in
the new manifest) and starts over.

What earlier steps put in the case (``volatile/``, ``preimage/``, ``audit/`` and anything in
``evidence/`` outside the three folders above, e.g. ``evidence/audit/`` from ``audit.run``) is
hashed in place and covered by the seal. After sealing, :func:`verify` is strict on the three
snapshot folders (any changed, missing or extra file fails); elsewhere the sealed files must
be unchanged, and files added later (the audit that runs after the snapshot) are reported as
"added after seal" without failing. ``evidence/`` itself stays writable for them.

:func:`export` writes a deterministic tar.gz of the case (``custody.jsonl`` excluded: the
archive's own hash is appended to it) and :func:`custody` appends who/when/why.

Decisions: the config is always copied (it is the primary evidence, token and all: the case is
0700 and its files 0400); ``credential`` rules (channel creds, identity keys, model API keys,
dotenv, secrets.json) are listed with size and SHA-256 unless ``credentials="copy"``. SQLite
stores (which also hold secrets on 2026.9) are copied: they hold the transcripts, pairing,
devices, approvals and the audit ledger. Rolling logs of the default profile family are taken
for every install (on 2026.1.x all profiles log there); another profile's family is not.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fnmatch
import functools
import getpass
import gzip
import hashlib
import io
import json
import os
import platform
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal, NamedTuple

from moltir import __version__
from moltir.engine.journal import GENESIS, Journal, line_hash, utc_now, verify_chain
from moltir.errors import EXIT_STEP_FAILED, MoltirError, usage_error
from moltir.fsutil import atomic_write, atomic_write_chunks, ensure_private_dir, fsync_dir
from moltir.redaction import register

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.openclaw import Install

SCHEMA: Final = "moltir.evidence/1"
BUF_SIZE: Final = 1 << 20  # one fixed buffer: constant memory whatever the file size
EVIDENCE: Final = "evidence"
INCOMPLETE: Final = "INCOMPLETE"
SPOOL: Final = ".manifest-files.moltir.tmp"  # in the case dir while a snapshot runs (never sealed)
FILES_PLACEHOLDER: Final = "\u0000moltir-files\u0000"
OWN_DIRS: Final = ("fs", "journald", "sqlite-backup")  # under evidence/: written only by the snapshot
# Earlier steps' output, hashed in place and sealed: evidence/ outside OWN_DIRS (e.g. evidence/audit/,
# written by audit.run), and these case folders.
COVERED_CASE_DIRS: Final = ("volatile", "preimage", "audit")
# Written once when the case opens (who, where, when, why): sealed in place too, so an edited
# reason or operator fails verification. Not reported as "added" by a case sealed before it was.
COVERED_CASE_FILES: Final = ("case.json",)
CUSTODY: Final = "custody.jsonl"
JOURNAL_MAX_LINES: Final = 200_000
JOURNAL_SINCE: Final = "-30d"
JOURNAL_TIMEOUT_S: Final = 120.0
MAX_CONFIG_BYTES: Final = 16 << 20
MAX_INCLUDE_DEPTH: Final = 10
PROGRESS_MIN_BYTES: Final = 64 << 20  # show a progress line for files at least this big (TTY only)
SKIPPED_SHOWN: Final = 8  # skipped sources named (with their reason) in the step's warnings
SPARSE_MIN_BYTES: Final = 64 << 20  # a file at least this big that is mostly holes is not copied (see _sparse)
SPARSE_MAX_EXTENTS: Final = 4096  # SEEK_DATA/SEEK_HOLE steps examined before judging from what was seen

Category = Literal["config", "log", "journal", "transcript", "sqlite", "approvals", "devices", "pairing",
                   "credential", "persistence", "state", "case"]
CredentialMode = Literal["list", "copy"]
ALL: Final = ("openclaw", "clawdbot")


@dataclass(frozen=True)
class Rule:
    """Collect files matching ``pattern`` (relative to root ``root``) as ``category``.

    Globs: ``*``/``?``/``[..]`` within one path segment, ``**`` any number of segments.
    Placeholders: ``{config}`` config file name, ``{includes}`` every ``$include`` file found
    under the root, ``{family}`` the gateway's rolling-log name families (``openclaw``,
    ``openclaw-<profile>``, ``clawdbot``), ``{log_name}``/``{log_stem}``/``{log_ext}`` the
    ``logging.file`` override, ``{unit}`` a systemd user unit. First matching rule wins.
    """

    root: str
    pattern: str
    category: Category
    note: str = ""
    products: tuple[str, ...] = ALL  # Install.product values the rule applies to


_DATE: Final = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"

# Every source root and rule, in collection order (most volatile first: RFC 3227 §2.1).
RULES: Final[tuple[Rule, ...]] = (
    # gateway file logs in the shared temp dir: pruned by OpenClaw after 24 h, so first
    Rule("tmp-logs", "{family}-" + _DATE + ".log", "log", "today's and older rolling logs (profile-named)"),
    Rule("tmp-logs", "{family}-" + _DATE + ".[0-9].log", "log", "numbered size-rotation archives .1-.5"),
    Rule("tmp-logs", "openclaw.log", "log", "legacy single-file default"),
    Rule("tmp-logs", "clawdbot.log", "log", "legacy single-file default", ("clawdbot",)),
    Rule("log-file", "{log_name}", "log", "logging.file override"),
    Rule("log-file", "{log_stem}.[0-9]{log_ext}", "log", "its size-rotation archives"),
    Rule("macos-logs", "*", "log", "launchd stdout/stderr (gateway[-<profile>].log, .err.log)"),
    Rule("journald", "{unit}", "journal", "journalctl --user -u <unit> -o json, last 30 days, bounded"),
    # the config, OpenClaw's own backups of it, every $include
    Rule("config", "{config}", "config", "the active config"),
    Rule("config", "{config}.bak", "config", "OpenClaw's backup ring"),
    Rule("config", "{config}.bak.*", "config", "OpenClaw's backup ring (.bak.1 ... .bak.4)"),
    Rule("config", "{config}.last-good", "config", "last-known-good copy"),
    Rule("config", "{config}.pre-update", "config", "copy taken before an update"),
    Rule("config", "{config}.clobbered.*", "config", "external edits doctor repaired"),
    Rule("config", "{config}.rejected.*", "config", "OpenClaw-owned writes that failed validation"),
    Rule("config", "{includes}", "config", "$include files (recursive, up to 10 levels)"),
    Rule("include-roots", "{includes}", "config", "$include files under OPENCLAW_INCLUDE_ROOTS"),
    # the state dir
    Rule("state", "logs/**", "log", "gateway-restart.log, stability bundles, any file log kept here"),
    Rule("state", "agents/*/sessions/**", "transcript",
         "legacy JSONL transcripts + sessions.json; cold/*.jsonl.zst archives (2026.9)"),
    Rule("state", "agents/*/agent/*.sqlite*", "sqlite", "per-agent store (transcripts, memory, auth), -wal/-shm"),
    Rule("state", "state/*.sqlite*", "sqlite",
         "shared store: pairing, devices, exec approvals, audit ledger (2026.9), -wal/-shm"),
    Rule("state", "memory/*.sqlite*", "sqlite", "memory index, -wal/-shm"),
    Rule("state", "tasks/**/*.sqlite*", "sqlite", "task ledger tasks/runs.sqlite (2026.3.31-2026.5.x)"),
    Rule("state", "flows/*.sqlite*", "sqlite", "flows registry flows/registry.sqlite (2026.4.2-2026.5.x)"),
    Rule("state", "plugin-state/*.sqlite*", "sqlite", "plugin state store (2026.4.29-2026.5.x)"),
    Rule("state", "transcripts/**", "transcript", "meeting transcripts (2026.5.26-2026.7.x)"),
    Rule("state", "exec-approvals.json", "approvals", "exec approvals (legacy location in the state dir)"),
    Rule("state", "devices/*", "devices", "paired/pending devices (+ .migrated leftovers)"),
    Rule("state", "nodes/*", "devices", "paired/pending nodes"),
    Rule("state", "credentials/*-pairing.json*", "pairing", "channel pairing requests"),
    Rule("state", "credentials/*-allowFrom.json*", "pairing", "channel allow-lists granted by pairing"),
    Rule("state", "credentials/**", "credential", "channel credentials (WhatsApp creds.json, oauth.json)"),
    Rule("state", "identity/*", "credential", "gateway device identity: private key and device token"),
    Rule("state", "agents/*/agent/models.json", "credential", "model provider config with plaintext API keys"),
    Rule("state", "agents/*/agent/auth-profiles.json", "credential", "model auth profiles"),
    Rule("state", "agents/*/agent/auth.json", "credential", "model auth"),
    Rule("state", ".env", "credential", "dotenv read by the gateway"),
    Rule("state", "secrets.json", "credential", "file secret provider"),
    Rule("state", "cron/**", "persistence", "scheduled jobs"),
    Rule("state", "hooks/**", "persistence", "hooks"),
    Rule("state", "extensions/*/package.json", "persistence",
         "installed plugins (manifests only: plugin code is a persistence vector; its code stays in place)"),
    Rule("state", "extensions/*/openclaw.plugin.json", "persistence", "installed plugin manifests"),
    Rule("state", "workspace/*.md", "persistence", "agent prompt files (AGENTS, SOUL, TOOLS, ...)"),
    Rule("state", "telegram/*.json", "state", "channel cursors (update offsets)"),
    Rule("home-openclaw", "exec-approvals.json", "approvals",
         "2026.1.x: hard-coded ~/.openclaw/exec-approvals.json whatever the state dir"),
    Rule("oauth", "*-pairing.json*", "pairing", "OPENCLAW_OAUTH_DIR: channel pairing requests"),
    Rule("oauth", "*-allowFrom.json*", "pairing", "OPENCLAW_OAUTH_DIR: allow-lists"),
    Rule("oauth", "**", "credential", "OPENCLAW_OAUTH_DIR: channel credentials"),
    Rule("xdg-config", "gateway.env", "credential", "~/.config/openclaw/gateway.env fallback dotenv"),
)


# ---- roots ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Root:
    key: str
    path: Path
    shared: bool = False  # a world-writable temp dir: the root must not be a symlink, foreign files refused
    placeholders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Sources:
    """The resolved roots of one install and what was noted while resolving them."""

    roots: tuple[Root, ...]
    units: tuple[str, ...]
    expected_uid: int
    notes: tuple[str, ...]
    skipped: tuple[dict[str, Any], ...]  # includes outside every root, unreadable config, ...


def _log_families(install: Install) -> tuple[str, ...]:
    fams = ["openclaw"] if install.product != "clawdbot" else ["clawdbot", "openclaw"]
    if install.profile:
        fams.insert(0, f"openclaw-{encode_log_profile(install.profile)}")
    return tuple(fams)


def encode_log_profile(profile: str) -> str:
    """OpenClaw's ``encodeLogProfileSegment`` (2026.9.6 dist/logger): the profile part of a log name."""
    out = []
    for ch in profile:
        if re.fullmatch(r"[a-z0-9]", ch):
            out.append(ch)
        elif ch == "-":
            out.append("--")
        elif ch == "_":
            out.append("-0")
        elif re.fullmatch(r"[A-Z]", ch):
            out.append(f"-1{ch.lower()}")
        else:
            out.append(f"-2{ord(ch):x}-")
    encoded = "".join(out)
    if len(encoded) <= 220:
        return encoded
    return "-3" + hashlib.sha256(profile.encode()).hexdigest()


def _expand_user_path(raw: str, install: Install, base: Path) -> Path:
    text = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", lambda m: install.env.get(m.group(1), m.group(0)), raw)
    if text.startswith("~"):
        text = str(install.home) + text[1:]
    path = Path(text)
    return path if path.is_absolute() else base / path


def read_regular_file(path: Path, limit: int = MAX_CONFIG_BYTES) -> bytes:
    """Read a small regular file without following a final symlink or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if st.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@dataclass
class _ConfigFacts:
    """What the snapshot needs from the config: nothing else of it is kept in memory."""

    includes: list[Path] = field(default_factory=list)
    log_file: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _config_facts(config_path: Path, install: Install) -> _ConfigFacts:
    """Every ``$include`` reachable from the config (recursively) and ``logging.file``."""
    from moltir.openclaw import parse_config_text

    facts = _ConfigFacts()

    def walk_value(value: Any, owner: Path, depth: int) -> None:
        if isinstance(value, Mapping):
            inc = value.get("$include")
            targets = [inc] if isinstance(inc, str) else (inc if isinstance(inc, list) else [])
            for t in targets:
                if isinstance(t, str):
                    visit(_expand_user_path(t, install, owner.parent), depth + 1)
            for k, v in value.items():
                if k != "$include":
                    walk_value(v, owner, depth)
        elif isinstance(value, list):
            for v in value:
                walk_value(v, owner, depth)

    def visit(path: Path, depth: int) -> None:
        path = Path(os.path.normpath(path))
        if depth > 0 and (path in facts.includes or path == config_path):
            return
        if depth > MAX_INCLUDE_DEPTH:
            facts.skipped.append({"source": str(path), "category": "config",
                                  "reason": f"$include nested deeper than {MAX_INCLUDE_DEPTH} levels"})
            return
        if depth > 0:
            facts.includes.append(path)
        try:
            data = parse_config_text(read_regular_file(path).decode("utf-8-sig", "replace"), path)
        except OSError as exc:
            if depth == 0 and exc.errno == errno.ENOENT:
                facts.notes.append(f"no config file at {path}")
            elif depth == 0:
                facts.notes.append(f"config not read ({exc.strerror or exc}): $include and logging.file "
                                   "not resolved")
            return  # an unreadable include is reported when the walk meets it (or not, if absent)
        except MoltirError as exc:
            facts.notes.append(f"{path} not parsed ({exc.message}): its $include entries were not resolved")
            return
        if depth == 0:
            gw = data.get("gateway")
            auth = gw.get("auth") if isinstance(gw, Mapping) else None
            for key in ("token", "password"):
                value = auth.get(key) if isinstance(auth, Mapping) else None
                if isinstance(value, str):
                    register(value)
            logging_cfg = data.get("logging")
            raw = logging_cfg.get("file") if isinstance(logging_cfg, Mapping) else None
            if isinstance(raw, str) and raw.strip():
                facts.log_file = raw.strip()
        walk_value(data, path, depth)
        del data

    visit(config_path, 0)
    return facts


def _owner_uid(path: Path) -> int:
    try:
        return path.stat().st_uid
    except OSError:
        return os.geteuid()


def resolve_roots(install: Install, *, journal: bool = True, system_units: Sequence[str] = ()) -> Sources:
    """The roots :data:`RULES` apply to for this install (roots that do not exist are kept: the
    manifest records them as absent). ``system_units``: system units that ran the gateway (their
    journal is collected as ``system:<unit>``, which needs root)."""
    notes: list[str] = []
    skipped: list[dict[str, Any]] = []
    roots: list[Root] = []
    cfg_path = install.config_path
    facts = _config_facts(cfg_path, install)
    skipped.extend(facts.skipped)
    notes.extend(facts.notes)
    includes = facts.includes

    fams = _log_families(install)
    seen_tmp: set[str] = set()
    for d in install.tmp_log_dirs():
        if str(d) not in seen_tmp:
            seen_tmp.add(str(d))
            roots.append(Root("tmp-logs", d, shared=True, placeholders={"family": fams}))

    if facts.log_file:
        log_file = Path(os.path.normpath(_expand_user_path(facts.log_file, install, cfg_path.parent)))
        stem, ext = log_file.stem, log_file.suffix
        roots.append(Root("log-file", log_file.parent, shared=_world_writable(log_file.parent),
                          placeholders={"log_name": (_esc(log_file.name),), "log_stem": (_esc(stem),),
                                        "log_ext": (_esc(ext),)}))
    for product in ("openclaw", "clawdbot"):
        roots.append(Root("macos-logs", install.home / "Library" / "Logs" / product))

    # $include files: under the config dir, or under an OPENCLAW_INCLUDE_ROOTS entry
    config_dir = cfg_path.parent
    include_roots = [Path(p) for p in install.env.get("OPENCLAW_INCLUDE_ROOTS", "").split(os.pathsep) if p]
    by_root: dict[Path, list[str]] = {}
    for inc in includes:
        home_root = next((r for r in [config_dir, *include_roots] if _is_within(inc, r)), None)
        if home_root is None:
            skipped.append({"source": str(inc), "reason": "$include outside the config dir and "
                            "OPENCLAW_INCLUDE_ROOTS (OpenClaw refuses it too): not collected"})
            continue
        by_root.setdefault(home_root, []).append(_esc(inc.relative_to(home_root).as_posix()))
    roots.append(Root("config", config_dir, placeholders={"config": (_esc(cfg_path.name),),
                                                           "includes": tuple(by_root.get(config_dir, ()))}))
    for r in include_roots:
        if r != config_dir and by_root.get(r):
            roots.append(Root("include-roots", r, placeholders={"includes": tuple(by_root[r])}))

    roots.append(Root("state", install.state_dir))
    home_oc = install.home / ".openclaw"
    roots.append(Root("home-openclaw", home_oc))
    oauth = install.env.get("OPENCLAW_OAUTH_DIR") or install.env.get("CLAWDBOT_OAUTH_DIR")
    if oauth:
        roots.append(Root("oauth", _expand_user_path(oauth, install, install.home)))
    roots.append(Root("xdg-config", install.home / ".config" / "openclaw"))

    units: tuple[str, ...] = ()
    if journal:
        if shutil.which("journalctl", path=install.env.get("PATH", os.defpath) + os.pathsep + os.defpath):
            units = (*(f"system:{u}" for u in system_units), *install.systemd_units())
        else:
            notes.append("journalctl not found: the gateway's systemd user journal was not collected")
    return Sources(tuple(roots), units, _owner_uid(install.state_dir), tuple(notes), tuple(skipped))


def _esc(text: str) -> str:
    """Escape glob metacharacters so a literal name can be used as a pattern."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _world_writable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IWOTH)
    except OSError:
        return False


# ---- glob matching ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pattern:
    rule: Rule
    text: str
    segs: tuple[str, ...]
    rx: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rx", _pattern_regex(self.segs))

    def match(self, rel: tuple[str, ...]) -> bool:
        return self.rx.match("/".join(rel)) is not None

    def match_path(self, rel: str) -> bool:
        """:meth:`match` of a relative path given as one string (``a/b/c``): one regex match."""
        return self.rx.match(rel) is not None

    def may_descend(self, rel_dir: tuple[str, ...]) -> bool:
        """Could a file below the folder ``rel_dir`` match?"""
        return _prefix(self.segs, rel_dir)


def _prefix(pat: tuple[str, ...], rel: tuple[str, ...]) -> bool:
    if not rel:
        return bool(pat)
    if not pat:
        return False
    if pat[0] == "**":
        return True
    return fnmatch.fnmatchcase(rel[0], pat[0]) and _prefix(pat[1:], rel[1:])


def _match(pat: tuple[str, ...], rel: tuple[str, ...]) -> bool:
    """The reference matcher, a segment at a time (``**``: any number of folders); the walk uses
    :func:`_pattern_regex`, which tests pin to agree with this."""
    if not pat:
        return not rel
    if pat[0] == "**":
        return any(_match(pat[1:], rel[i:]) for i in range(len(rel) + 1)) if len(pat) > 1 else bool(rel)
    return bool(rel) and fnmatch.fnmatchcase(rel[0], pat[0]) and _match(pat[1:], rel[1:])


def _segment_regex(seg: str) -> str:
    """A regex for one fnmatch segment (``*``, ``?``, ``[...]``) that never matches a ``/``.

    A bracket expression is translated by fnmatch itself (ranges, ``!``, a reversed range that
    matches nothing), behind a ``(?!/)`` guard."""
    out: list[str] = []
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and seg[j] == "!":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(c))
                continue
            translated = fnmatch.translate(seg[i - 1:j + 1])  # "(?s:<class>)\Z"
            out.append(f"(?!/){translated.removesuffix(chr(92) + 'Z')}")
            i = j + 1
        else:
            out.append(re.escape(c))
    return "".join(out)


def _pattern_regex(segs: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex for a rule pattern over a ``/``-joined relative path, with :func:`_match`'s
    meaning: a trailing ``**`` is one or more names, any other ``**`` zero or more folders."""
    parts: list[str] = []
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        if seg == "**":
            parts.append("[^/]+(?:/[^/]+)*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(seg) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z", re.S)


def _patterns_for(root: Root, product: str) -> list[_Pattern]:
    out: list[_Pattern] = []
    for rule in RULES:
        if rule.root != root.key or product not in rule.products:
            continue
        texts = [rule.pattern]
        for name in re.findall(r"\{(\w+)\}", rule.pattern):
            values = root.placeholders.get(name, ())
            texts = [t.replace("{" + name + "}", v) for t in texts for v in values]
        out.extend(_Pattern(rule, t, tuple(t.split("/"))) for t in texts)
    return out


# ---- the walk ------------------------------------------------------------------------------

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
                if (lst.st_dev, lst.st_ino) in self.exclude:
                    continue
                sub = [p for p in patterns if p.may_descend(child)]
                if not sub:
                    hit = next((p for p in patterns if p.match(child)), None)
                    if hit is not None:  # e.g. logging.file naming a folder: say so, do not stay silent
                        yield Skip(source, "a folder where a file is expected (not collected)", root.key,
                                   hit.rule.category)
                    continue
                try:
                    cfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except OSError as exc:
                    reason = ("replaced by a symlink during the walk (not followed)" if exc.errno == errno.ELOOP
                              else _cannot("open the folder", exc, lst))
                    yield Skip(source, reason, root.key)
                    continue
                try:
                    cst = os.fstat(cfd)
                    if (cst.st_dev, cst.st_ino) != (lst.st_dev, lst.st_ino):
                        yield Skip(source, "replaced during the walk", root.key)
                        continue
                    yield from self._walk_dir(root, cfd, source, child, sub)
                finally:
                    os.close(cfd)
                continue
            rel_s = "/".join(child)
            pat = next((p for p in patterns if p.match_path(rel_s)), None)
            if pat is None:
                if stat.S_ISLNK(lst.st_mode) and any(p.may_descend(child) for p in patterns):
                    yield Skip(source, f"symlink to {_readlink(name, dfd)!r} where a folder to collect "
                               "could be (not followed)", root.key)
                continue
            cat = pat.rule.category
            if stat.S_ISLNK(lst.st_mode):
                yield Skip(source, f"symlink to {_readlink(name, dfd)!r} (not followed: it may leave the "
                           "collected folders)", root.key, cat)
            elif not stat.S_ISREG(lst.st_mode):
                yield Skip(source, f"{_kind(lst.st_mode)}, not a regular file (not opened)", root.key, cat)
            elif root.key in self.overlapping and self._earlier_root_took(root, rel_s):
                continue  # the same file through two overlapping roots: taken (or skipped) the first time
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


def _cannot(doing: str, exc: OSError, st: os.stat_result) -> str:
    """Why an entry could not be read; for a permission problem, whose it is and what to do.

    A file in the user's own state dir owned by root is typically left by a gateway once run
    with sudo: the reason names the owner and mode so the user can take it deliberately.
    """
    if exc.errno not in (errno.EACCES, errno.EPERM):
        return f"cannot {doing}: {exc.strerror}"
    owner = _owner_name(st.st_uid) or f"uid {st.st_uid}"
    return (f"cannot {doing}: permission denied (owned by {owner}, mode {stat.S_IMODE(st.st_mode):04o}); "
            f"not collected: run moltir as {owner} to take it")


class _RootSkip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _readlink(name: str, dfd: int) -> str:
    try:
        return os.readlink(name, dir_fd=dfd)
    except OSError:
        return "?"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


# ---- plan ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    roots: tuple[tuple[str, str, bool], ...]  # (key, path, exists)
    files: int
    bytes: int
    listed: int
    skipped: int
    by_category: Mapping[str, int]
    units: tuple[str, ...]
    notes: tuple[str, ...]


def estimate(install: Install, *, credentials: CredentialMode = "list", journal: bool = True,
             exclude: Sequence[Path] = ()) -> Estimate:
    """What a snapshot would take, from directory listings and lstat only (opens no file)."""
    sources = resolve_roots(install, journal=journal)
    walker = _Walker(sources, install.product, exclude)
    files = size = listed = 0
    skipped: set[str] = set()
    by_cat: dict[str, int] = {}
    for root in sources.roots:
        for item in walker.walk(root):
            if isinstance(item, Skip):
                skipped.add(item.source)
                continue
            if item.rule.category == "credential" and credentials != "copy":
                listed += 1
                continue
            if _sparse_suspect(item.lst):  # the snapshot confirms with SEEK_HOLE; the plan opens nothing
                skipped.add(item.source)
                continue
            files += 1
            size += item.lst.st_size
            by_cat[item.rule.category] = by_cat.get(item.rule.category, 0) + item.lst.st_size
    roots = tuple((r.key, str(r.path), r.path.is_dir()) for r in sources.roots)
    return Estimate(roots, files, size, listed, len(skipped) + len(sources.skipped), by_cat, sources.units,
                    sources.notes)


# ---- the copier ----------------------------------------------------------------------------

class _DestError(Exception):
    """Writing into the case failed (disk full, I/O error): the snapshot cannot go on."""

    def __init__(self, exc: OSError, path: str) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.path = path


OnChunk = Callable[[str, int, int], None]  # (source, bytes copied so far, size at open)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _copy_fd(src: int, dst: int | None, buf: bytearray, source: str, size: int, on_chunk: OnChunk | None,
             dst_path: str = "") -> tuple[str, int]:
    """Read ``src`` to the end once, hashing and (when ``dst``) writing the same bytes."""
    h = hashlib.sha256()
    view = memoryview(buf)
    total = 0
    while True:
        n = os.readv(src, [buf])
        if n == 0:
            break
        chunk = view[:n]
        h.update(chunk)
        if dst is not None:
            try:
                _write_all(dst, chunk)
            except OSError as exc:
                raise _DestError(exc, dst_path) from None
        total += n
        if on_chunk is not None:
            on_chunk(source, total, size)
    return h.hexdigest(), total


def _sparse_suspect(st: os.stat_result) -> bool:
    """Big and with less than half of its length allocated: maybe sparse (cheap, from stat alone).

    Compressing filesystems (ZFS, btrfs) also allocate less than the length of a text log, so
    a suspect is confirmed with :func:`_hole_fraction` before it is skipped.
    """
    return st.st_size >= SPARSE_MIN_BYTES and st.st_blocks * 512 < st.st_size // 2


def _hole_fraction(fd: int, size: int) -> float:
    """The share of the file that is holes (SEEK_DATA/SEEK_HOLE); 0.0 where the filesystem cannot tell.

    At most :data:`SPARSE_MAX_EXTENTS` extents are examined; past that, the share seen so far is used.

    Decision: a file of at least 64 MiB that is more than half holes is skipped, not copied and not
    hashed. Copying would write (and hashing would read) every zero of its apparent length: a
    sparse "log" of 200 GiB planted in /tmp/openclaw would fill the case's disk or hold the
    snapshot for minutes. OpenClaw's logs, transcripts and SQLite stores are never sparse, so the
    manifest lists it with its size and what is allocated, for a human to look at.
    """
    seek_data, seek_hole = getattr(os, "SEEK_DATA", None), getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None or size <= 0:
        return 0.0
    pos = holes = 0
    try:
        for _ in range(SPARSE_MAX_EXTENTS):
            try:
                data = os.lseek(fd, pos, seek_data)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos: the rest is one hole
                    holes += size - pos
                    pos = size
                    break
                raise
            holes += data - pos
            pos = os.lseek(fd, data, seek_hole)
            if pos >= size:
                break
    except OSError:
        return 0.0
    finally:
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
    return holes / pos if pos else 0.0


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _open_source(name: str, dir_fd: int | None) -> tuple[int, bool]:
    base = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(name, base | noatime, dir_fd=dir_fd), True
        except PermissionError:
            pass  # O_NOATIME needs ownership or CAP_FOWNER
    return os.open(name, base, dir_fd=dir_fd), False


def _iso(ns: int) -> str:
    """UTC ISO 8601 with microseconds (``2026-11-30T23:46:14.123456Z``), truncated from ``ns``."""
    sec, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{rest // 1000:06d}Z"


@functools.lru_cache(maxsize=64)
def _owner_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _stat_fields(st: os.stat_result) -> dict[str, Any]:
    return {"mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid,
            "owner": _owner_name(st.st_uid), "inode": st.st_ino, "dev": st.st_dev, "nlink": st.st_nlink,
            "atime_ns": st.st_atime_ns, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "atime": _iso(st.st_atime_ns), "mtime": _iso(st.st_mtime_ns), "ctime": _iso(st.st_ctime_ns)}


def _changed(a: os.stat_result, b: os.stat_result, copied: int) -> bool:
    return ((a.st_size, a.st_mtime_ns, a.st_ctime_ns) != (b.st_size, b.st_mtime_ns, b.st_ctime_ns)
            or copied != a.st_size)


def _mkdirs(case_dir: Path, rel_dir: str, made: set[str] | None = None) -> None:
    """Create ``rel_dir`` under the case, every level 0700 (mkdir(parents=True) would use the umask).

    ``made`` remembers the folders this snapshot already created, so 20,000 files in one folder
    cost one mkdir, not one per level per file (measured by bench/: 240,000 calls, 1.3 s).
    """
    if made is not None and rel_dir in made:
        return
    path = case_dir
    prefix = ""
    try:
        for part in rel_dir.split("/"):
            if part:
                path = path / part
                prefix = f"{prefix}/{part}" if prefix else part
                if made is not None and prefix in made:
                    continue
                with contextlib.suppress(FileExistsError):
                    path.mkdir(mode=0o700)
                if made is not None:
                    made.add(prefix)
    except OSError as exc:
        raise _DestError(exc, str(path)) from None


def evidence_rel(source: str, kind: str = "fs") -> str:
    """Where a source path lands inside the case: ``evidence/fs/<absolute path>``."""
    return f"{EVIDENCE}/{kind}/{source.lstrip('/')}"


@dataclass
class _Collector:
    case_dir: Path
    credentials: CredentialMode
    on_chunk: OnChunk | None
    buf: bytearray = field(default_factory=lambda: bytearray(BUF_SIZE))
    made_dirs: set[str] = field(default_factory=set)
    # manifest entries of the copied files go to a spool file as they are made (one compact JSON line
    # each), not into a list: 20,000 files held as dicts cost ~70 MiB; only counts stay in memory
    spool: IO[bytes] | None = None
    count: int = 0
    changed: list[str] = field(default_factory=list)          # sources that changed while being copied
    sqlite: list[dict[str, Any]] = field(default_factory=list)  # copied .sqlite stores (for the backup API)
    listed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes: int = 0
    noatime_refused: int = 0

    @property
    def spool_path(self) -> Path:
        return self.case_dir / SPOOL

    def add(self, entry: dict[str, Any]) -> None:
        """Record a copied (or hashed in place) file for the manifest."""
        if self.spool is None:
            self.spool = open(self.spool_path, "wb")  # noqa: SIM115 -- closed by close_spool()
        self.spool.write(_dump(entry))
        self.count += 1
        if entry.get("changed_during_copy"):
            self.changed.append(str(entry["source"]))
        if entry.get("category") == "sqlite" and str(entry["source"]).endswith(".sqlite"):
            self.sqlite.append(entry)

    def entries(self) -> Iterator[builtins.bytes]:  # (``bytes`` is a field of this class)
        """The spooled manifest entries, one compact JSON line each, in the order they were made."""
        self.close_spool(remove=False)
        if self.count == 0:
            return
        with open(self.spool_path, "rb") as fh:
            yield from fh

    def close_spool(self, *, remove: bool) -> None:
        if self.spool is not None:
            self.spool.flush()
            self.spool.close()
            self.spool = None
        if remove:
            with contextlib.suppress(OSError):
                self.spool_path.unlink()

    def skip(self, s: Skip) -> None:
        if any(e["source"] == s.source for e in self.skipped):
            return  # met again through an overlapping root
        entry = {"source": s.source, "reason": s.reason}
        if s.root:
            entry["root"] = s.root
        if s.category:
            entry["category"] = s.category
        self.skipped.append(entry)

    def take(self, f: Found, *, kind: str = "fs") -> dict[str, Any] | None:
        copy = f.rule.category != "credential" or self.credentials == "copy"
        try:
            fd, noatime = _open_source(f.name, f.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None  # vanished since the listing
            reason = ("replaced by a symlink after listing (not followed)" if exc.errno == errno.ELOOP
                      else _cannot("open", exc, f.lst))
            self.skip(Skip(f.source, reason, f.root.key, f.rule.category))
            return None
        dst: int | None = None
        rel = evidence_rel(f.source, kind)
        complete = False  # a copy that did not finish (disk full, Ctrl-C, read error) is removed
        try:
            st0 = os.fstat(fd)
            if not stat.S_ISREG(st0.st_mode) or (st0.st_dev, st0.st_ino) != (f.lst.st_dev, f.lst.st_ino):
                what = "a different file" if stat.S_ISREG(st0.st_mode) else f"a {_kind(st0.st_mode)}"
                self.skip(Skip(f.source, f"replaced by {what} after listing (not copied)", f.root.key,
                               f.rule.category))
                return None
            if _sparse_suspect(st0) and (holes := _hole_fraction(fd, st0.st_size)) > 0.5:
                self.skip(Skip(f.source, f"sparse file: {_human(st0.st_size)} long but {holes:.0%} holes, "
                               f"{_human(st0.st_blocks * 512)} on disk (not copied: a planted sparse file "
                               "would fill the case's disk; no OpenClaw log or store is sparse)",
                               f.root.key, f.rule.category))
                return None
            if not noatime:
                self.noatime_refused += 1
            if st0.st_size > len(self.buf):  # one read does a small file: no advice needed
                with contextlib.suppress(OSError, AttributeError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if copy:
                _mkdirs(self.case_dir, rel.rpartition("/")[0], self.made_dirs)
                try:
                    # created read-only (0400): the open descriptor still writes it, and nobody else can
                    dst = os.open(os.path.join(self.case_dir, rel),  # noqa: PTH118 -- hot path, no pathlib
                                  os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
                except OSError as exc:
                    raise _DestError(exc, rel) from None
            try:
                digest, copied = _copy_fd(fd, dst, self.buf, f.source, st0.st_size, self.on_chunk, rel)
            except _DestError:
                raise
            except OSError as exc:  # the SOURCE failed (I/O error, ...): skip it, keep going
                self.skip(Skip(f.source, f"read error: {exc.strerror}", f.root.key, f.rule.category))
                return None
            st1 = os.fstat(fd)
            if dst is not None:
                try:
                    os.utime(dst, ns=(st0.st_atime_ns, st0.st_mtime_ns))
                except OSError as exc:
                    raise _DestError(exc, rel) from None
            complete = True
        finally:
            os.close(fd)
            if dst is not None:
                os.close(dst)
                if not complete:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.case_dir, rel))  # noqa: PTH108,PTH118
        entry: dict[str, Any] = {"source": f.source, "root": f.root.key, "category": f.rule.category,
                                 "rule": f.rule.pattern, "size": copied, "size_at_open": st0.st_size,
                                 "sha256": digest, "changed_during_copy": _changed(st0, st1, copied),
                                 "noatime": noatime, **_stat_fields(st0)}
        if copy:
            entry["path"] = rel
            self.add(entry)
            self.bytes += copied
        else:
            entry["not_copied"] = "credential: listed only (with credentials: copy to copy it)"
            self.listed.append(entry)
        return entry

    def take_case_file(self, rel: str) -> None:
        """Hash a file an earlier step put in the case (volatile/, preimage/, audit/) in place."""
        path = self.case_dir / rel
        try:
            fd, _ = _open_source(str(path), None)
        except OSError as exc:
            self.skipped.append({"source": f"case:{rel}", "reason": f"cannot open: {exc.strerror}"})
            return
        try:
            st0 = os.fstat(fd)
            if not stat.S_ISREG(st0.st_mode):
                self.skipped.append({"source": f"case:{rel}", "reason": f"{_kind(st0.st_mode)}, not a regular file"})
                return
            digest, copied = _copy_fd(fd, None, self.buf, rel, st0.st_size, self.on_chunk)
            st1 = os.fstat(fd)
        finally:
            os.close(fd)
        self.add({"path": rel, "source": f"case:{rel}", "root": "case", "category": "case",
                  "size": copied, "size_at_open": st0.st_size, "sha256": digest,
                  "changed_during_copy": _changed(st0, st1, copied), **_stat_fields(st0)})
        self.bytes += copied


# ---- journald and sqlite -------------------------------------------------------------------

def _system_units(case: Case) -> list[str]:
    """The system unit that ran the gateway, as gateway.stop recorded it in this case (if any)."""
    try:
        record = case.restore_section("gateway")
    except MoltirError:
        return []
    svc = record.get("service") if isinstance(record, dict) else None
    if isinstance(svc, dict) and svc.get("scope") == "system" and isinstance(svc.get("name"), str):
        return [svc["name"]]
    return []


def _last_cursor(path: Path) -> str | None:
    """The ``__CURSOR`` of the last entry of a ``journalctl -o json`` file (read from its tail)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            tail = fh.read().splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("__CURSOR"), str):
            return str(entry["__CURSOR"])
    return None


def _collect_journal(col: _Collector, install: Install, unit: str) -> None:
    """``journalctl --user -u <unit> -o json`` (``system:<unit>``: the system journal, without
    ``--user``), streamed through the hasher into the case. Each entry carries its ``__CURSOR`` and
    timestamps; the manifest records the command (time range ``--since``) and the last cursor."""
    scope, _, name = unit.rpartition(":")
    user = scope != "system"
    source = f"journalctl {'--user ' if user else ''}-u {name} -o json"
    rel = f"{EVIDENCE}/journald/{'' if user else 'system-'}{name}.json"
    argv = ["journalctl", *(["--user"] if user else []), "-u", name, "-o", "json", "--no-pager",
            f"--since={JOURNAL_SINCE}", f"--lines={JOURNAL_MAX_LINES}"]
    keep = ("PATH", "HOME", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", "LANG", "LC_ALL", "USER", "LOGNAME")
    env = {k: v for k, v in install.env.items() if k in keep}
    env["PATH"] = env.get("PATH", os.defpath) + os.pathsep + os.defpath
    env["SYSTEMD_PAGER"] = ""
    _mkdirs(col.case_dir, rel.rpartition("/")[0], col.made_dirs)
    tmp = col.case_dir / f"{rel}.partial"
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, close_fds=True)
    except OSError as exc:
        col.skipped.append({"source": source, "category": "journal",
                            "reason": f"journalctl could not run: {exc.strerror}"})
        return
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None
    err_tail = bytearray()

    def drain() -> None:
        while chunk := stderr.read(4096):
            err_tail.extend(chunk)
            del err_tail[:-4096]

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    timer = threading.Timer(JOURNAL_TIMEOUT_S, proc.kill)  # a wedged journalctl must not hang the snapshot
    timer.start()
    try:
        try:
            dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _DestError(exc, str(tmp)) from None
        ok = False
        try:
            digest, copied = _copy_fd(stdout.fileno(), dst, col.buf, source, 0, col.on_chunk, rel)
            ok = True
        finally:
            os.close(dst)
            if not ok:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    finally:
        timer.cancel()
        if proc.poll() is None and not timer.finished.is_set():
            proc.kill()
        rc = proc.wait()
        drainer.join()
        stdout.close()
        stderr.close()
    first_err = bytes(err_tail).decode("utf-8", "replace").strip().splitlines()[:1]
    if copied == 0:
        with contextlib.suppress(OSError):
            tmp.unlink()
        detail = f": {first_err[0]}" if first_err else ""
        if rc == 0:  # nothing logged for that unit (no such unit, no journald): not a skipped source
            col.notes.append(f"{source}: no entries{detail}")
        else:
            col.skipped.append({"source": source, "category": "journal", "reason": f"journalctl: exit {rc}{detail}"})
        return
    try:
        tmp.chmod(0o400)
        tmp.rename(col.case_dir / rel)
        st = (col.case_dir / rel).stat()
    except OSError as exc:
        raise _DestError(exc, rel) from None
    col.add({"path": rel, "source": source, "root": "journald", "category": "journal",
                      "rule": "{unit}", "size": copied, "sha256": digest, "changed_during_copy": False,
                      "command": argv, "exit_code": rc, "killed_after_s": JOURNAL_TIMEOUT_S if rc < 0 else None,
                      "since": JOURNAL_SINCE, "last_cursor": _last_cursor(col.case_dir / rel),
                      "stderr": first_err[0] if first_err else None,
                      "mtime_ns": st.st_mtime_ns, "mtime": _iso(st.st_mtime_ns)})
    col.bytes += copied


def _sqlite_backup(col: _Collector, entry: Mapping[str, Any]) -> None:
    """A consistent copy of a live SQLite db with the online backup API (gateway running)."""
    import sqlite3
    from urllib.parse import quote

    source = str(entry["source"])
    rel = evidence_rel(source, "sqlite-backup")
    _mkdirs(col.case_dir, rel.rpartition("/")[0], col.made_dirs)
    tmp = col.case_dir / f"{rel}.partial"
    try:
        src = sqlite3.connect(f"file:{quote(source)}?mode=ro", uri=True, timeout=10)
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                # self-contained copy: opening it later must not create -wal/-shm beside it
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(exc, sqlite3.Error):
            raise
        if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower():
            raise _DestError(OSError(errno.ENOSPC, "database or disk is full"), rel) from None
        col.skipped.append({"source": source, "category": "sqlite",
                            "reason": f"consistent copy (sqlite3 backup API) failed: {exc}"})
        return
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            digest, size = _copy_fd(fd, None, col.buf, rel, 0, None)
            os.fchmod(fd, 0o400)
        finally:
            os.close(fd)
        tmp.rename(col.case_dir / rel)
    except OSError as exc:
        raise _DestError(exc, rel) from None
    col.add({"path": rel, "source": source, "root": "sqlite-backup", "category": "sqlite",
                      "size": size, "sha256": digest, "changed_during_copy": False,
                      "sqlite_copy": "consistent (sqlite3 online backup API, gateway running; "
                                     "journal_mode set to DELETE on the copy)",
                      "consistent_copy_of": entry.get("path")})
    col.bytes += size


# ---- progress ------------------------------------------------------------------------------

class _Progress:
    """A one-line progress display on a TTY for big files; silent otherwise."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = 0.0
        self.shown = False

    def __call__(self, source: str, done: int, size: int) -> None:
        if size < PROGRESS_MIN_BYTES:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < size:
            return
        self.last = now
        pct = min(100, done * 100 // max(size, 1))
        bar = "#" * (pct // 5) + "-" * (20 - pct // 5)
        name = source if len(source) <= 48 else "..." + source[-45:]
        self.stream.write(f"\r  evidence [{bar}] {pct:3d}% {done >> 20}/{size >> 20} MiB {name}\x1b[K")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# ---- snapshot ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SnapshotResult:
    case_dir: Path
    files: int
    bytes: int
    listed: int
    skipped: int
    changed_during_copy: tuple[str, ...]
    manifest_sha256: str
    sealed_at: str
    gateway_running: bool
    warnings: tuple[str, ...] = ()


def case_state(case_dir: Path) -> str:
    """``sealed`` | ``incomplete`` | ``unsealed`` | ``no evidence``."""
    ev = case_dir / EVIDENCE
    if (ev / INCOMPLETE).exists():
        return "incomplete"
    if (case_dir / "seal.json").exists():
        return "sealed"
    if ev.exists():
        return "unsealed"
    return "no evidence"


def _gateway_running(install: Install) -> bool:
    from moltir.openclaw.gateway_http import port_open

    try:
        port = install.gateway_port()
    except MoltirError:
        port = install.gateway_port({})
    return port_open(port)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(BUF_SIZE):
            h.update(chunk)
    return h.hexdigest()


def _binary_info(install: Install) -> dict[str, Any] | None:
    if install.binary is None:
        return None
    real = os.path.realpath(install.binary)
    info: dict[str, Any] = {"path": str(install.binary), "realpath": real}
    try:
        info["sha256"] = _sha256_file(Path(real))
    except OSError as exc:
        info["sha256_error"] = exc.strerror
    return info


def _clock() -> dict[str, Any]:
    ns = time.time_ns()
    return {"utc": _iso(ns), "unix_ns": ns, "monotonic_ns": time.monotonic_ns(),
            "timezone": time.strftime("%Z"), "utc_offset": time.strftime("%z")}


def _prepare_evidence_dir(case_dir: Path) -> list[str]:
    """Move the copies of an earlier incomplete/unsealed attempt aside (into ``evidence.attempt-N/``,
    kept); other steps' files in evidence/ (evidence/audit/) stay. Returns the earlier attempts."""
    ev = case_dir / EVIDENCE
    if ev.is_symlink():
        raise OSError(errno.ELOOP, "evidence/ is a symlink")
    leftovers = [ev / d for d in (*OWN_DIRS, INCOMPLETE) if (ev / d).exists() or (ev / d).is_symlink()]
    if leftovers:
        n = 1
        while (case_dir / f"{EVIDENCE}.attempt-{n}").exists():
            n += 1
        aside = case_dir / f"{EVIDENCE}.attempt-{n}"
        aside.mkdir(mode=0o700)
        for p in leftovers:
            p.rename(aside / p.name)
    return sorted(p.name for p in case_dir.glob(f"{EVIDENCE}.attempt-*"))


def covered_case_files(case_dir: Path) -> list[str]:
    """Files earlier steps put in the case that the seal covers in place (paths relative to the case)."""
    out: list[str] = []
    ev = case_dir / EVIDENCE
    if ev.is_dir() and not ev.is_symlink():
        for entry in sorted(p.name for p in ev.iterdir()):
            if entry in OWN_DIRS or entry == INCOMPLETE:
                continue
            out += _tree(case_dir, f"{EVIDENCE}/{entry}") if (ev / entry).is_dir() else [f"{EVIDENCE}/{entry}"]
    for sub in COVERED_CASE_DIRS:
        if (case_dir / sub).is_dir() and not (case_dir / sub).is_symlink():
            out += _tree(case_dir, sub)
    out += [name for name in COVERED_CASE_FILES if (case_dir / name).is_file() and not (case_dir / name).is_symlink()]
    return out


def _mark_incomplete(case_dir: Path, started: Mapping[str, Any], reason: str) -> None:
    data = json.dumps({"started": dict(started), "reason": reason, "at": utc_now()}, indent=2) + "\n"
    with contextlib.suppress(OSError, MoltirError):
        atomic_write(case_dir / EVIDENCE / INCOMPLETE, data.encode())


def snapshot(case: Case, install: Install, journal: Journal, *, credentials: CredentialMode = "list",
             collect_journal: bool = True, gateway_running: bool | None = None,
             on_chunk: OnChunk | None = None, progress: bool | None = None,
             sources: Sources | None = None) -> SnapshotResult:
    """Collect, copy+hash, write manifest.json, SHA256SUMS and seal.json into ``case``.

    ``sources`` defaults to :func:`resolve_roots` of ``install``; ``on_chunk`` is called after
    every buffer copied; ``gateway_running=None`` probes the gateway's port.

    Raises ``MoltirError`` (exit 1) when the case cannot be written (disk full ...): the
    case is then marked incomplete and left unsealed. ``KeyboardInterrupt`` marks it
    incomplete too and propagates.
    """
    case_dir = case.dir
    if case_state(case_dir) == "sealed":
        raise usage_error(f"the evidence of case {case.id} is already sealed",
                          "open a new case to take another snapshot")
    running = _gateway_running(install) if gateway_running is None else gateway_running
    start_clock = _clock()
    try:
        previous = _prepare_evidence_dir(case_dir)
        ensure_private_dir(case_dir / EVIDENCE)
        atomic_write(case_dir / EVIDENCE / INCOMPLETE,
                     (json.dumps({"started": start_clock, "reason": "snapshot in progress"}) + "\n").encode())
    except OSError as exc:
        raise _fail_message(exc, str(case_dir / EVIDENCE)) from None
    journal.append("evidence.start", case_id=case.id, credentials=credentials, gateway_running=running,
                   previous_attempts=previous)
    show = progress if progress is not None else sys.stderr.isatty()
    bar = _Progress(sys.stderr) if show else None

    def chunk_hook(source: str, done: int, size: int) -> None:
        if bar is not None:
            bar(source, done, size)
        if on_chunk is not None:
            on_chunk(source, done, size)

    col = _Collector(case_dir, credentials, chunk_hook)
    if sources is None:
        sources = resolve_roots(install, journal=collect_journal, system_units=_system_units(case))
    col.skipped.extend(sources.skipped)
    walker = _Walker(sources, install.product, exclude=[case_dir])
    try:
        try:
            for root in sources.roots:
                if root.key == "config" and sources.units:
                    for unit in sources.units:  # logs before config: the journal is more volatile
                        _collect_journal(col, install, unit)
                for item in walker.walk(root):
                    if isinstance(item, Skip):
                        col.skip(item)
                    else:
                        col.take(item)
            sqlite_mode = "byte-exact (gateway stopped: db + -wal + -shm are consistent)"
            if running:
                sqlite_mode = ("byte-exact copies taken while the gateway was running (may be inconsistent) "
                               "+ consistent copies with the sqlite3 backup API under evidence/sqlite-backup/")
                for entry in list(col.sqlite):
                    _sqlite_backup(col, entry)
            for rel in covered_case_files(case_dir):
                col.take_case_file(rel)
            _syncfs(case_dir / EVIDENCE)
            manifest = _manifest(case, install, sources, col, start_clock, running, sqlite_mode, credentials,
                                 previous)
            return _seal(case, journal, col, manifest)
        except _DestError as exc:
            raise _fail_message(exc.exc, exc.path) from None
        except OSError as exc:  # writing manifest/SHA256SUMS/seal (atomic_write already cleaned up)
            raise _fail_message(exc, str(case_dir)) from None
    except MoltirError as exc:
        _mark_incomplete(case_dir, start_clock, exc.message)
        with contextlib.suppress(MoltirError, OSError):
            journal.append("evidence.incomplete", case_id=case.id, error=exc.message, files=col.count)
        raise
    except KeyboardInterrupt:
        _mark_incomplete(case_dir, start_clock, "interrupted")
        with contextlib.suppress(MoltirError, OSError):
            journal.append("evidence.incomplete", case_id=case.id, error="interrupted", files=col.count)
        raise
    finally:
        col.close_spool(remove=True)
        if bar is not None:
            bar.close()


def _fail_message(exc: OSError, where: str) -> MoltirError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "disk full"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    elif exc.errno == errno.EROFS:
        what = "read-only file system"
    else:
        what = exc.strerror or str(exc)
    return MoltirError(f"evidence snapshot failed: {what} writing {where}; the case is marked incomplete, not sealed",
                       hint="free space (or fix the folder) and run it again; the incomplete copy is kept aside",
                       exit_code=EXIT_STEP_FAILED)


def _syncfs(path: Path) -> None:
    """Flush the copies to disk once, before a manifest describes them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if libc.syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)
    except (AttributeError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
            raise _DestError(exc, str(path)) from None
        os.sync()


def _manifest(case: Case, install: Install, sources: Sources, col: _Collector, start_clock: Mapping[str, Any],
              running: bool, sqlite_mode: str, credentials: str, previous: list[str]) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    roots = []
    for r in sources.roots:
        real = os.path.realpath(r.path)
        roots.append({"key": r.key, "path": str(r.path), "realpath": real, "exists": r.path.is_dir(),
                      "shared_temp": r.shared})
    return {
        "schema": SCHEMA,
        "case_id": case.id,
        "collector": {"tool": "moltir", "version": __version__, "user": user, "uid": os.getuid(),
                      "euid": os.geteuid(), "sudo_user": os.environ.get("SUDO_USER"), "host": socket.gethostname(),
                      "platform": platform.platform(), "python": platform.python_version(), "pid": os.getpid()},
        "install": install.describe(),
        "openclaw_binary": _binary_info(install),
        "install_owner_uid": sources.expected_uid,
        "options": {"credentials": credentials, "journal": bool(sources.units) or None},
        "clock": {"started": dict(start_clock), "finished": _clock()},
        "gateway_running": running,
        "sqlite": sqlite_mode,
        "o_noatime_refused": col.noatime_refused,
        "roots": roots,
        "rules": [{"root": r.root, "pattern": r.pattern, "category": r.category, "note": r.note}
                  for r in RULES if install.product in r.products],
        "journal_units": list(sources.units),
        "notes": [*sources.notes, *col.notes],
        "sealed_in_place": ("evidence/ outside " + ", ".join(OWN_DIRS) + "; " + ", ".join(COVERED_CASE_DIRS)
                            + "; " + ", ".join(COVERED_CASE_FILES)),
        "previous_attempts": previous,
        "counts": {"files": col.count, "bytes": col.bytes, "listed": len(col.listed),
                   "skipped": len(col.skipped), "changed_during_copy": len(col.changed)},
        "files": FILES_PLACEHOLDER,  # streamed from the collector's spool by _seal
        "listed": col.listed,
        "skipped": col.skipped,
    }


def sums_line(digest: str, rel: str) -> bytes:
    """One SHA256SUMS line in coreutils format (escaped the way ``sha256sum`` escapes names)."""
    name = os.fsencode(rel)
    if b"\\" in name or b"\n" in name or b"\r" in name:
        name = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
        return b"\\" + digest.encode() + b"  " + name + b"\n"
    return digest.encode() + b"  " + name + b"\n"


def _dump(obj: Any) -> bytes:
    """Compact JSON: ``indent`` would switch json to its pure-Python encoder, which for a 20,000-file
    manifest costs ~90 MiB of peak memory and seconds (measured by bench/). ``jq .`` pretty-prints it."""
    return (json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def _hashed(chunks: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def _manifest_chunks(manifest: Mapping[str, Any], col: _Collector) -> Iterator[bytes]:
    """``_dump(manifest)`` with its ``files`` list streamed from the spool: byte for byte what
    json.dumps would give for the list of entries (each spooled line is that entry's _dump)."""
    head, sep, tail = _dump(manifest).partition(json.dumps(FILES_PLACEHOLDER).encode())
    if not sep:
        raise AssertionError("manifest without its files placeholder")  # pragma: no cover
    yield head + b"["
    first = True
    for line in col.entries():
        yield (b"" if first else b",") + line.rstrip(b"\n")
        first = False
    yield b"]" + tail


def _sums_chunks(col: _Collector, case_dir: Path) -> Iterator[bytes]:
    """SHA256SUMS lines from the spool; the files of covered case dirs are made read-only on the way
    (copies already are)."""
    for line in col.entries():
        f = json.loads(line)
        if str(f["source"]).startswith("case:"):
            with contextlib.suppress(OSError):
                os.chmod(case_dir / f["path"], 0o400)
        yield sums_line(f["sha256"], f["path"])


def _seal(case: Case, journal: Journal, col: _Collector, manifest: dict[str, Any]) -> SnapshotResult:
    """Write manifest.json and SHA256SUMS (streamed: memory does not grow with the number of files),
    then seal.json over both. ``files`` in the manifest and SHA256SUMS are in collection order: roots
    in RULES order, each folder's entries sorted by name (deterministic for the same tree)."""
    case_dir = case.dir
    manifest_hash, sums_hash = hashlib.sha256(), hashlib.sha256()
    atomic_write_chunks(case_dir / "manifest.json", _hashed(_manifest_chunks(manifest, col), manifest_hash),
                        mode=0o400)
    atomic_write_chunks(case_dir / "SHA256SUMS", _hashed(_sums_chunks(col, case_dir), sums_hash), mode=0o400)
    sealed_ns = time.time_ns()
    seal = {"schema": SCHEMA, "case_id": case.id, "manifest_sha256": manifest_hash.hexdigest(),
            "sha256sums_sha256": sums_hash.hexdigest(), "files": col.count,
            "bytes": manifest["counts"]["bytes"], "journal_head": journal.head, "journal_records": journal.seq,
            "sealed_at": _iso(sealed_ns), "sealed_at_ns": sealed_ns, "sealed_monotonic_ns": time.monotonic_ns()}
    seal_bytes = _dump(seal)
    atomic_write(case_dir / "seal.json", seal_bytes, mode=0o400)
    (case_dir / EVIDENCE / INCOMPLETE).unlink()
    fsync_dir(case_dir / EVIDENCE)
    for own in OWN_DIRS:  # evidence/ itself stays writable: audit.run adds evidence/audit/ later
        for dirpath, _dirs, _files in os.walk(case_dir / EVIDENCE / own, topdown=False):
            os.chmod(dirpath, 0o500)
    changed = tuple(col.changed)
    journal.append("evidence.sealed", case_id=case.id, seal_sha256=hashlib.sha256(seal_bytes).hexdigest(),
                   manifest_sha256=seal["manifest_sha256"], files=seal["files"], bytes=seal["bytes"],
                   listed=len(manifest["listed"]), skipped=len(manifest["skipped"]),
                   changed_during_copy=list(changed))
    warnings = []
    if changed:
        warnings.append(f"{len(changed)} file(s) changed while being copied (flagged in the manifest): "
                        + ", ".join(changed[:3]) + (" ..." if len(changed) > 3 else ""))
    skipped = manifest["skipped"]
    if skipped:  # named with their reasons: a symlink to /etc/shadow should not hide in a count
        warnings.append(f"{len(skipped)} source(s) skipped, not copied (all in manifest.json):")
        warnings += [f"  skipped {s['source']}: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
        if len(skipped) > SKIPPED_SHOWN:
            warnings.append(f"  ... and {len(skipped) - SKIPPED_SHOWN} more")
    return SnapshotResult(case_dir, seal["files"], seal["bytes"], len(manifest["listed"]), len(manifest["skipped"]),
                          changed, seal["manifest_sha256"], seal["sealed_at"], manifest["gateway_running"],
                          tuple(warnings))


# ---- verify --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyReport:
    case_dir: Path
    state: str
    files_checked: int
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # seal, manifest, journal, custody, incomplete
    added_after_seal: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.mismatched or self.missing or self.extra or self.problems)

    def lines(self) -> list[str]:
        out = [f"changed: {p}" for p in self.mismatched]
        out += [f"missing: {p}" for p in self.missing]
        out += [f"extra (not in the manifest): {p}" for p in self.extra]
        out += list(self.problems)
        return out

    def summary(self) -> str:
        if self.ok:
            return f"{self.case_dir}: evidence ok ({self.files_checked} files, seal, journal chain)"
        parts = []
        for label, items in (("changed", self.mismatched), ("missing", self.missing), ("extra", self.extra)):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        parts += list(self.problems[:3])
        return f"{self.case_dir}: evidence verification failed: " + "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"case_dir": str(self.case_dir), "state": self.state, "ok": self.ok,
                "files_checked": self.files_checked, "mismatched": list(self.mismatched),
                "missing": list(self.missing), "extra": list(self.extra), "problems": list(self.problems),
                "added_after_seal": list(self.added_after_seal)}


def _case_file_size(case_dir: Path, rel: str) -> int | None:
    """Size of a regular file inside the case, or None when it is missing or not a regular file."""
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    try:
        st = os.lstat(os.path.join(case_dir, rel))  # noqa: PTH118 -- once per file: no pathlib
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _hash_case_file(case_dir: Path, rel: str) -> str | None:
    """SHA-256 of a file inside the case, or None when it is missing or not a regular file."""
    if rel.startswith("/") or ".." in rel.split("/"):
        return None
    try:
        fd = os.open(case_dir / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest, _ = _copy_fd(fd, None, bytearray(BUF_SIZE), rel, 0, None)
        return digest
    finally:
        os.close(fd)


def _tree_iter(case_dir: Path, sub: str) -> Iterator[str]:
    """Every file (and symlink to a folder) under ``case_dir/sub``, relative to ``case_dir``."""
    base = str(case_dir).rstrip("/") + "/"
    for dirpath, dirnames, filenames in os.walk(base + sub):
        dirnames.sort()
        rel_dir = dirpath[len(base):]
        yield from (f"{rel_dir}/{fn}" for fn in filenames)
        yield from (f"{rel_dir}/{d}" for d in dirnames if os.path.islink(f"{dirpath}/{d}"))  # noqa: PTH114


def _tree(case_dir: Path, sub: str) -> list[str]:
    return sorted(_tree_iter(case_dir, sub))


class _FileRef(NamedTuple):
    """What verify needs of a manifest file entry (a 20,000-file manifest as full dicts is ~60 MiB)."""

    path: str
    size: object
    sha256: object


def _compact_file_entry(pairs: list[tuple[str, Any]]) -> Any:
    """json object hook: a copied file's entry (it has a string ``path`` and a ``sha256``) becomes a
    :class:`_FileRef`; every other object stays a dict."""
    obj = dict(pairs)
    path = obj.get("path")
    if isinstance(path, str) and "sha256" in obj and "source" in obj:
        return _FileRef(path, obj.get("size"), obj.get("sha256"))
    return obj


_WS_RE = re.compile(r"[ \t\n\r]*")


class _JsonStream:
    """A JSON text read a chunk at a time, decoded one value at a time (``json.raw_decode``)."""

    CHUNK = 1 << 20

    def __init__(self, fh: IO[str]) -> None:
        self.fh, self.buf, self.pos, self.eof = fh, "", 0, False
        self.decoder = json.JSONDecoder(object_pairs_hook=_compact_file_entry)

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(self.CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        return True

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end)."""
        while True:
            m = _WS_RE.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self, char: str) -> None:
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at offset {self.pos}")
        self.pos += 1

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self._fill():
                    continue
                raise
            if end == len(self.buf) and self._fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return obj


def _manifest_files(path: Path) -> Iterator[Any]:
    """The items of manifest.json's top-level ``files`` list, one at a time (file entries as
    :class:`_FileRef`): verifying a 20,000-file case does not hold its whole manifest in memory.
    Raises ValueError when the text is not one JSON object."""
    with open(path, encoding="utf-8") as fh:
        js = _JsonStream(fh)
        js.take("{")
        more = js.peek() != "}"
        while more:
            key = js.value()
            js.take(":")
            if key == "files" and js.peek() == "[":
                js.take("[")
                items = js.peek() != "]"
                while items:
                    yield js.value()
                    items = js.peek() == ","
                    if items:
                        js.take(",")
                js.take("]")
            else:
                js.value()
            more = js.peek() == ","
            if more:
                js.take(",")
        js.take("}")
        if js.peek() != "":
            raise ValueError("data after the manifest's object")


def verify(case_dir: Path, *, rehash: bool = True) -> VerifyReport:
    """Check every hash, missing and extra files, the seal, the journal chain and the custody log.

    ``rehash=False`` (the snapshot step's own verify, right after it hashed every byte it wrote)
    checks each file's presence, type and size instead of reading it all again; everything else
    (seal, manifest, SHA256SUMS, extra files, journal) is checked the same. ``moltir evidence
    verify`` always re-hashes.
    """
    case_dir = Path(case_dir)
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    state = case_state(case_dir)
    problems: list[str] = []
    if state == "no evidence":
        return VerifyReport(case_dir, state, 0, problems=("no evidence snapshot in this case",))
    if state == "incomplete":
        reason = ""
        with contextlib.suppress(OSError, ValueError):
            reason = str(json.loads((case_dir / EVIDENCE / INCOMPLETE).read_text()).get("reason", ""))
        problems.append(f"evidence/INCOMPLETE: the snapshot did not finish ({reason or 'no reason recorded'})")
    seal: dict[str, Any] = {}
    try:
        seal = json.loads((case_dir / "seal.json").read_bytes())
    except FileNotFoundError:
        problems.append("seal.json is missing: the evidence was never sealed")
    except (OSError, ValueError):
        problems.append("seal.json is unreadable or not JSON")
    own_prefixes = tuple(f"{EVIDENCE}/{d}/" for d in OWN_DIRS)
    mismatched: list[str] = []
    missing: list[str] = []
    others: set[str] = set()   # listed files outside evidence/<own dirs> (case files: a few)
    checked = in_own = 0
    expected = hashlib.sha256()  # SHA256SUMS as the manifest says it must be
    malformed = False
    # one pass over the manifest, a file entry at a time: memory does not grow with the number of files
    try:
        for f in _manifest_files(case_dir / "manifest.json"):
            if not isinstance(f, _FileRef):
                malformed = True
                continue
            checked += 1
            expected.update(sums_line(str(f.sha256), f.path))
            if f.path.startswith(own_prefixes):
                in_own += 1
            else:
                others.add(f.path)
            if not rehash:
                size = _case_file_size(case_dir, f.path)
                if size is None:
                    missing.append(f.path)
                elif size != f.size:
                    mismatched.append(f.path)
                continue
            digest = _hash_case_file(case_dir, f.path)
            if digest is None:
                missing.append(f.path)
            elif digest != f.sha256:
                mismatched.append(f.path)
        manifest_sha256 = _sha256_file(case_dir / "manifest.json")
    except (OSError, ValueError):
        problems.append("manifest.json is missing or not JSON")
        return VerifyReport(case_dir, state, 0, problems=tuple(problems))
    if seal and seal.get("manifest_sha256") != manifest_sha256:
        problems.append("manifest.json does not match seal.json (changed after sealing)")
    try:
        sums_sha256 = _sha256_file(case_dir / "SHA256SUMS")
        if seal and seal.get("sha256sums_sha256") != sums_sha256:
            problems.append("SHA256SUMS does not match seal.json (changed after sealing)")
        if sums_sha256 != expected.hexdigest() or malformed:
            problems.append("SHA256SUMS does not match manifest.json")
    except OSError:
        problems.append("SHA256SUMS is missing")
    # extra files under evidence/<own dirs>: the happy path only counts them; names are looked up
    # (a set of the listed paths) only when the counts differ
    extra: list[str] = []
    on_disk = sum(1 for d in OWN_DIRS for _ in _tree_iter(case_dir, f"{EVIDENCE}/{d}"))
    if on_disk != in_own - sum(1 for p in missing if p.startswith(own_prefixes)):
        listed = {f.path for f in _manifest_files(case_dir / "manifest.json") if isinstance(f, _FileRef)}
        extra = [p for d in OWN_DIRS for p in _tree(case_dir, f"{EVIDENCE}/{d}") if p not in listed]
    added = [p for p in covered_case_files(case_dir) if p not in others and p not in COVERED_CASE_FILES]

    chain = verify_chain(case_dir / "journal.jsonl")
    problems += [f"journal.jsonl: {p}" for p in chain.problems]
    if seal:
        problems += _check_journal_anchor(case_dir, seal)
    if (case_dir / CUSTODY).exists():
        cust = verify_chain(case_dir / CUSTODY)
        problems += [f"{CUSTODY}: {p}" for p in cust.problems]
    return VerifyReport(case_dir, state, checked, tuple(mismatched), tuple(missing), tuple(extra),
                        tuple(problems), tuple(added))


def _check_journal_anchor(case_dir: Path, seal: Mapping[str, Any]) -> list[str]:
    """The seal's journal head must be a line of the journal, and a later line must name the seal."""
    try:
        lines = [ln for ln in (case_dir / "journal.jsonl").read_bytes().split(b"\n") if ln.strip()]
    except OSError:
        return ["journal.jsonl is missing"]
    n = seal.get("journal_records")
    head = seal.get("journal_head")
    if not isinstance(n, int) or n < 0 or n > len(lines):
        return ["seal.json names a journal position the journal does not have (journal truncated?)"]
    actual = line_hash(lines[n - 1]) if n else GENESIS
    if actual != head:
        return [f"journal.jsonl: line {n} does not match the head recorded in seal.json (journal rewritten?)"]
    seal_hash = hashlib.sha256((case_dir / "seal.json").read_bytes()).hexdigest()
    for raw in lines[n:]:
        with contextlib.suppress(ValueError):
            rec = json.loads(raw)
            if rec.get("event") == "evidence.sealed" and rec.get("seal_sha256") == seal_hash:
                return []
    return ["seal.json is not the seal the journal recorded (no matching evidence.sealed event)"]


# ---- export and custody --------------------------------------------------------------------

@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    size: int
    members: int
    state: str


class _HashingWriter(io.RawIOBase):
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.h = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        _write_all(self.fd, view)
        self.h.update(view)
        self.size += len(view)
        return len(view)


def parse_recipients(texts: Sequence[str]) -> list[Any]:
    """age recipients (``age1…`` X25519 keys, or ``ssh-ed25519 …`` / ``ssh-rsa …`` public keys);
    a bad one is a one-line usage error."""
    import pyrage

    out = []
    for text in texts:
        t = text.strip()
        try:
            kind = pyrage.ssh if t.startswith("ssh-") else pyrage.x25519
            out.append(kind.Recipient.from_str(t))
        except (pyrage.RecipientError, ValueError) as exc:
            raise usage_error(f"--encrypt {t[:40]!r}: not an age recipient ({exc})",
                              "give an age public key (age1..., from 'age-keygen') or an SSH public key "
                              "(ssh-ed25519 ..., ssh-rsa ...)") from None
    return out


def export(case_dir: Path, out: Path, recipients: Sequence[str] = ()) -> ExportResult:
    """A deterministic tar.gz of the case (sorted, fixed owner/mtime, gzip mtime 0); its
    SHA-256 is appended to the case's custody log. ``custody.jsonl`` itself is not archived.

    ``recipients``: the archive is age-encrypted to them (pyrage: the reference ``age`` format,
    readable with ``age -d`` / ``rage -d``); the plaintext archive exists only as a 0600 temp file
    next to the output while it is encrypted. The custody log records the recipients and the SHA-256
    of the encrypted file."""
    keys = parse_recipients(recipients) if recipients else []
    case_dir = Path(case_dir).absolute()
    out = Path(out).absolute()
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    if _is_within(out, case_dir):
        raise usage_error(f"{out} is inside the case folder", "write the archive somewhere else (-o PATH)")
    if out.exists() or out.is_symlink():
        raise usage_error(f"{out} already exists", "choose another -o path (moltir never overwrites an export)")
    if not out.parent.is_dir():
        raise usage_error(f"{out.parent} does not exist", "create the folder or choose another -o path")
    state = case_state(case_dir)
    mtime = 0
    with contextlib.suppress(OSError, ValueError, TypeError):
        mtime = int(json.loads((case_dir / "seal.json").read_bytes())["sealed_at_ns"]) // 1_000_000_000
    case_id = case_dir.name
    with contextlib.suppress(OSError, ValueError):
        case_id = str(json.loads((case_dir / "case.json").read_bytes()).get("case_id") or case_id)

    members: list[tuple[str, Path, bool]] = []
    for dirpath, dirnames, filenames in os.walk(case_dir):
        dirnames.sort()
        for d in dirnames:
            p = Path(dirpath) / d
            if not p.is_symlink():
                members.append((p.relative_to(case_dir).as_posix(), p, True))
        for fn in filenames:
            p = Path(dirpath) / fn
            rel = p.relative_to(case_dir).as_posix()
            if rel == CUSTODY or p.is_symlink() or not p.is_file() or ".moltir-" in fn:
                continue
            members.append((rel, p, False))
    members.sort(key=lambda m: m[0])

    tmp = out.with_name(f".{out.name}.moltir-{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            raw = _HashingWriter(fd)
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz, \
                    tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for rel, path, is_dir in members:
                    info = tarfile.TarInfo(f"{case_id}/{rel}")
                    info.mtime = mtime
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    if is_dir:
                        info.type = tarfile.DIRTYPE
                        info.mode = 0o700
                        tar.addfile(info)
                        continue
                    info.mode = 0o400
                    with open(path, "rb") as fh:
                        info.size = os.fstat(fh.fileno()).st_size
                        tar.addfile(info, _Bounded(fh, info.size))
            os.fsync(fd)
        finally:
            os.close(fd)
        if keys:
            _encrypt(tmp, out, keys)
        else:
            tmp.rename(out)
        fsync_dir(out.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            from moltir.fsutil import os_error

            raise os_error(exc, f"writing {out}") from None
        raise
    digest, size = raw.h.hexdigest(), raw.size
    extra: dict[str, Any] = {}
    if keys:
        extra = {"encrypted": "age", "recipients": [str(r) if str(r) else "ssh key" for r in keys],
                 "plaintext_sha256": digest}
        digest, size = _sha256_file(out), out.stat().st_size
    custody(case_dir, f"exported to {out}", action="export", archive=str(out), archive_sha256=digest,
            archive_bytes=size, members=len(members), case_state=state, **extra)
    return ExportResult(out, digest, size, len(members), state)


def _encrypt(plain: Path, out: Path, keys: Sequence[Any]) -> None:
    import pyrage

    tmp = out.with_name(f".{out.name}.moltir-age-{os.getpid()}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
        pyrage.encrypt_file(str(plain), str(tmp), list(keys))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.rename(out)
    finally:
        for leftover in (tmp, plain):
            with contextlib.suppress(OSError):
                leftover.unlink()



class _Bounded(io.RawIOBase):
    """Exactly ``size`` bytes of ``fh``: a file that changed after fstat cannot corrupt the tar."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh = fh
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        want = self.left if n < 0 else min(n, self.left)
        parts = []
        while want > 0:
            chunk = self.fh.read(want)
            if not chunk:
                raise OSError(errno.EIO, "a case file shrank while being archived")
            parts.append(chunk)
            want -= len(chunk)
            self.left -= len(chunk)
        return b"".join(parts)


def custody(case_dir: Path, note: str, *, action: str = "note", **fields: Any) -> dict[str, Any]:
    """Append who/when/why to the case's custody log (hash-chained JSONL, like the journal)."""
    case_dir = Path(case_dir)
    if not (case_dir / "case.json").is_file():
        raise usage_error(f"{case_dir} is not a moltir case (no case.json)",
                          "pass a case folder or id from 'moltir evidence list'")
    if not note.strip():
        raise usage_error("the custody note is empty", "say who took custody and why: --note TEXT")
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    seal_hash = None
    with contextlib.suppress(OSError):
        seal_hash = hashlib.sha256((case_dir / "seal.json").read_bytes()).hexdigest()
    return Journal(case_dir / CUSTODY).append(
        f"custody.{action}", note=note.strip(), user=user, uid=os.getuid(), sudo_user=os.environ.get("SUDO_USER"),
        host=socket.gethostname(), seal_sha256=seal_hash, **fields)


# ---- listing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseSummary:
    id: str
    path: Path
    state: str
    size: int
    opened_at: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": str(self.path), "state": self.state, "size": self.size,
                "opened_at": self.opened_at, "kind": self.kind}


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for fn in files:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / fn).lstat().st_size
    return total


def summarize(case_dir: Path) -> CaseSummary:
    info: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads((case_dir / "case.json").read_bytes())
        info = loaded if isinstance(loaded, dict) else {}
    return CaseSummary(str(info.get("case_id") or case_dir.name), case_dir, case_state(case_dir), _du(case_dir),
                       str(info.get("opened_at") or ""), str(info.get("kind") or ""))


def list_cases(cases_root: Path, extra: Sequence[Path] = ()) -> list[CaseSummary]:
    """Every case under ``cases_root`` plus ``extra`` folders (e.g. from the install index), oldest first."""
    found: dict[str, Path] = {}
    if cases_root.is_dir():
        for p in cases_root.iterdir():
            if (p / "case.json").is_file():
                found[os.path.realpath(p)] = p
    for p in extra:
        if (p / "case.json").is_file():
            found.setdefault(os.path.realpath(p), p)
    out = [summarize(p) for p in found.values()]
    return sorted(out, key=lambda c: (c.opened_at, c.id))


__all__ = [
    "RULES", "CaseSummary", "Estimate", "ExportResult", "Rule", "SnapshotResult",
    "VerifyReport", "case_state", "custody", "estimate", "export", "list_cases", "resolve_roots", "snapshot",
    "summarize", "verify",
]
