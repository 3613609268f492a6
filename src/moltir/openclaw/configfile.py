"""The OpenClaw config as files: load (with ``$include``), find the file that owns a key, plan
edits as per-file diffs, and write them safely.

Used by every action that edits the config (``dm_policy.*``, ``token.*``). Edits go through
:mod:`moltir.openclaw.json5edit`, so comments and layout survive; OpenClaw's own writers would strip them.

``$include`` (shared/research/openclaw-facts.md §1, ``dist/includes-*.mjs``): an object
``{ $include: "./x.json5" }`` is replaced by the parsed file (paths relative to the including
file; an array of files is deep-merged; sibling keys are merged over the included value).
Like OpenClaw's own writer, moltir edits a key inside the deepest *sole* single-file include
that owns it, and refuses ("fails closed") when the path runs through a root-level include,
an include array or an include with sibling keys, or when the owning file lies outside the
config directory.

Refusals, all before anything is written (exit codes of :mod:`moltir.errors`):

* 2 (bad input): the file is not UTF-8, not JSON5, has duplicate keys, a value of the wrong type
  on the path (e.g. ``channels`` not an object), an unreadable or invalid ``$include``;
* 3 (environment not ready): no config file; the config (or an include moltir would edit) is a
  symlink (OpenClaw requires a regular file, and a rename would replace the link);
  ``OPENCLAW_CONFIG_READONLY=1``, ``OPENCLAW_NIX_MODE=1`` or ``CLAWDBOT_NIX_MODE=1``; the key
  lives in an include moltir may not edit (outside the config directory, root include, include
  array, sibling overrides);
* 1 (step failed): a file changed on disk between read and write (run the step again); the
  installed release's own validator (:mod:`moltir.openclaw.validate`) rejects the edited config for
  a problem the config did not already have (nothing is written: a config the gateway would refuse
  to start on is never left behind). A validator that cannot answer (no binary, no answer in time)
  does not stop the write; the step's result says the config was not validated.

An edit may never remove or change ``meta`` or ``gateway.mode``: the gateway's clobber guard
restores ``.bak`` over a config that lost ``meta`` and refuses to start without ``gateway.mode``
(openclaw-run.md §4).

One file as read and as planned (:class:`SourceFile`, :class:`FileEdit`, :func:`read_source`) is in
:mod:`moltir.openclaw.config_source`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from moltir.errors import EXIT_ENV, EXIT_STEP_FAILED, MoltirError, env_error, usage_error
from moltir.fsutil import atomic_write, os_error
from moltir.openclaw.config_source import (
    MISSING,
    FileEdit,
    Identity,
    SourceFile,
    WriteResult,
    get_path,
    kind_name,
    read_source,
    remove_stale_temps,
    sha256,
)
from moltir.openclaw.includes import (
    INCLUDE_KEY,
    MAX_INCLUDE_DEPTH,
    include_specs,
    include_target,
    merge_included,
    too_deep,
)
from moltir.openclaw.json5edit import DELETE, Document, Json5Error, KeyPath, parse, same_value, set_values, unified_diff

if TYPE_CHECKING:
    from moltir.engine.case import Case
    from moltir.openclaw import Install
    from moltir.openclaw.validate import Verdict

READONLY_VARS: Final = ("OPENCLAW_CONFIG_READONLY", "OPENCLAW_NIX_MODE", "CLAWDBOT_NIX_MODE")
PROTECTED_PATHS: Final[tuple[KeyPath, ...]] = (("meta",), ("gateway", "mode"))


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.relative_to(root)
    except ValueError:
        return False
    return True


_deep_merge = merge_included  # OpenClaw's include merge (moltir.openclaw.includes)


def _dotted(path: Sequence[str]) -> str:
    return ".".join(path) if path else "(the top level)"


class ConfigFile:
    """The config of one OpenClaw install, every include resolved, ready for planned edits."""

    def __init__(self, path: Path, env: Mapping[str, str], main: SourceFile) -> None:
        self.path = path
        self.env = dict(env)
        self.main = main
        self.config_dir = path.parent
        self.files: dict[Path, SourceFile] = {path: main}
        self.data: dict[str, Any] = {}
        self.install: Install | None = None  # set by load(): its release validates every write
        self.validation: Verdict | None = None  # the last write's verdict

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, install: Install) -> ConfigFile:
        cfg = cls.load_path(install.config_path, env=install.env)
        cfg.install = install
        return cfg

    @classmethod
    def load_path(cls, path: Path, *, env: Mapping[str, str] | None = None) -> ConfigFile:
        path = Path(os.path.normpath(Path(path).absolute()))
        main = read_source(path)
        if main.is_symlink:
            target = path.readlink()
            raise env_error(f"{path} is a symlink (to {target}); OpenClaw needs the active config to be a "
                            "regular file and moltir will not write through a link",
                            f"replace the link by the file it points to (cp --remove-destination "
                            f"\"$(readlink -f {path})\" {path}), then run again")
        self = cls(path, dict(os.environ if env is None else env), main)
        if main.doc.root.kind != "object":
            raise main.doc.error_at(main.doc.root.start, "the config must be a JSON5 object")
        self.data = self._resolve(main, main.doc.value, (), 0, frozenset({path}))
        channels = self.data.get("channels")
        if "channels" in self.data and not isinstance(channels, dict):
            try:
                owner, inner = self.owner_of(("channels",), for_write=False)
            except MoltirError:
                owner, inner = path, ()
            doc = self.files[owner].doc
            raise doc.error_at(_start_of(doc, inner), f"channels is {kind_name(channels)}, expected an object",
                               "fix the file by hand (channels maps channel ids to their settings); "
                               "moltir changed nothing")
        return self

    @property
    def text(self) -> str:
        return self.main.text

    @property
    def preimage(self) -> bytes:
        return self.main.raw

    @property
    def identity(self) -> Identity:
        return self.main.identity

    def _allowed_roots(self) -> list[Path]:
        roots = [self.config_dir]
        for entry in self.env.get("OPENCLAW_INCLUDE_ROOTS", "").split(os.pathsep):
            if entry and Path(entry).is_absolute():
                roots.append(Path(os.path.normpath(entry)))
        return roots

    def _include_target(self, spec: str, including: SourceFile, where: KeyPath) -> Path:
        """Resolve an include path the way OpenClaw does; refuse one OpenClaw would refuse."""
        label = f"$include {spec!r} at {_dotted(where)} in {including.path}"
        if "\0" in spec or not spec:
            raise usage_error(f"invalid {label}", "fix the include path; moltir changed nothing")
        target = include_target(spec, including.path)
        roots = self._allowed_roots()
        real = Path(os.path.realpath(target))
        if not any(_inside(r, target) for r in roots) or not any(
                _inside(Path(os.path.realpath(r)), real) for r in roots):
            raise usage_error(f"{label} points outside the config directory {self.config_dir}",
                              "OpenClaw refuses such includes too (unless OPENCLAW_INCLUDE_ROOTS allows "
                              "them): move the file into the config directory; moltir changed nothing")
        return target

    def _load_include(self, target: Path, via: str) -> SourceFile:
        if target not in self.files:
            try:
                self.files[target] = read_source(target, via=via)
            except MoltirError as exc:
                if exc.exit_code == EXIT_ENV and "no OpenClaw config" in exc.message:
                    raise usage_error(f"{via}: the included file {target} does not exist",
                                      "fix or remove the $include; moltir changed nothing") from None
                raise
        return self.files[target]

    def _resolve(self, src: SourceFile, value: Any, where: KeyPath, depth: int,
                 chain: frozenset[Path]) -> Any:
        if isinstance(value, list):
            return [self._resolve(src, v, where, depth, chain) for v in value]
        if not isinstance(value, dict):
            return value
        if INCLUDE_KEY not in value:
            return {k: self._resolve(src, v, (*where, k), depth, chain) for k, v in value.items()}
        specs = include_specs(value[INCLUDE_KEY])
        if specs is None:
            raise src.doc.error_at(_start_of(src.doc, (*where, INCLUDE_KEY)),
                                   "$include must be a file path or a list of file paths")
        if too_deep(depth + 1):
            raise usage_error(f"{src.path}: includes nested deeper than {MAX_INCLUDE_DEPTH} at {_dotted(where)}",
                              "flatten the includes; moltir changed nothing")
        merged: Any = {}
        for s in specs:
            target = self._include_target(s, src, where)
            if target in chain:
                raise usage_error(f"{src.path}: circular $include of {target} at {_dotted(where)}",
                                  "break the cycle; moltir changed nothing")
            inc = self._load_include(target, f"{_dotted(where)}.$include {s!r} in {src.path}")
            merged = _deep_merge(merged, self._resolve(inc, inc.doc.value, where, depth + 1, chain | {target}))
        rest = {k: self._resolve(src, v, (*where, k), depth, chain) for k, v in value.items() if k != INCLUDE_KEY}
        if not rest:
            return merged
        if not isinstance(merged, dict):
            raise src.doc.error_at(_start_of(src.doc, (*where, INCLUDE_KEY)),
                                   "keys next to $include need the included file to hold an object")
        return _deep_merge(merged, rest)

    # ---- reading values --------------------------------------------------------------------
    def get(self, path: KeyPath, default: Any = None) -> Any:
        value: Any = self.data
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value

    def has(self, path: KeyPath) -> bool:
        marker = object()
        return self.get(path, marker) is not marker

    def location(self, path: KeyPath) -> str:
        """``file:line:col`` of the value at ``path`` (or its deepest existing parent)."""
        try:
            owner, inner = self.owner_of(path, for_write=False)
        except MoltirError:
            owner, inner = self.path, ()
        line, col = self.files[owner].doc.locate(inner)
        return f"{owner}:{line}:{col}"

    # ---- ownership ----------------------------------------------------------------------------
    def owner_of(self, path: KeyPath, *, for_write: bool = True) -> tuple[Path, KeyPath]:
        """(file, path inside that file) where an edit of ``path`` must land.

        Follows sole single-file includes; refuses (exit 3) root includes, include arrays,
        includes with sibling keys, and (``for_write``) files outside the config directory.
        """
        src = self.main
        node = src.doc.root
        inner: KeyPath = ()
        level = 0
        for i in range(len(path) + 1):
            while node.kind == "object" and node.member(INCLUDE_KEY) is not None:
                member = node.member(INCLUDE_KEY)
                assert member is not None
                spec = member.value.value
                line, col = src.doc.position(member.key_start)
                label = f"the $include at {src.path}:{line}:{col}"
                if i == 0 and src is self.main:
                    raise env_error(f"{_dotted(path)} comes through {label} at the top level of the config",
                                    "moltir (like OpenClaw) only edits keys owned by one file: move the "
                                    "included keys into the config or into an include below the top level")
                if not isinstance(spec, str):
                    raise env_error(f"{_dotted(path)} comes through {label}, which merges several files",
                                    "moltir (like OpenClaw) will not guess which file owns the key: edit it "
                                    "by hand or split the include")
                if len(node.members) > 1:
                    raise env_error(f"{_dotted(path)} comes through {label}, which has keys next to it "
                                    "(they override the included file)",
                                    "moltir (like OpenClaw) will not guess which file owns the key: move those "
                                    "keys into the included file")
                target = self._include_target(spec, src, path[:i])
                if for_write and not _inside(Path(os.path.realpath(self.config_dir)),
                                             Path(os.path.realpath(target))):
                    raise env_error(f"{_dotted(path)} lives in {target}, included by {label}, outside the "
                                    f"config directory {self.config_dir}",
                                    "moltir only edits files inside the config directory: move the file there "
                                    "(and the $include with it), or edit it by hand")
                src = self._load_include(target, label)
                node = src.doc.root
                inner = ()
                level += 1
                if too_deep(level):
                    raise usage_error(f"includes nested deeper than {MAX_INCLUDE_DEPTH} at {_dotted(path[:i])}",
                                      "flatten the includes; moltir changed nothing")
            if i == len(path) or node.kind != "object":
                return src.path, inner + tuple(path[i:])
            member = node.member(path[i])
            if member is None:
                return src.path, inner + tuple(path[i:])
            node = member.value
            inner = (*inner, path[i])
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- planning and writing ----------------------------------------------------------------
    def readonly_reason(self) -> str | None:
        for var in READONLY_VARS:
            if self.env.get(var) == "1":
                return f"{var}=1"
        return None

    def plan_edits(self, edits: Mapping[KeyPath, object]) -> list[FileEdit]:
        """Per-file planned changes (only files that change). Nothing is written."""
        for p in edits:
            for protected in PROTECTED_PATHS:
                if p[:len(protected)] == protected or protected[:len(p)] == p:
                    raise MoltirError(f"refusing to edit {_dotted(p)}: OpenClaw needs meta and gateway.mode "
                                      "to stay as they are", hint="this is a moltir bug, please report it",
                                      exit_code=EXIT_STEP_FAILED)
        by_file: dict[Path, dict[KeyPath, object]] = {}
        for p, value in edits.items():
            owner, inner = self.owner_of(p)
            if inner == () or inner[0] == INCLUDE_KEY:
                raise env_error(f"{_dotted(p)} is an include pointer, not a value moltir can edit",
                                "edit it by hand")
            by_file.setdefault(owner, {})[inner] = value
        out: list[FileEdit] = []
        for owner, file_edits in by_file.items():
            src = self.files[owner]
            after = set_values(src.text, file_edits, source=str(owner))
            if after != src.text:
                out.append(FileEdit(owner, src.text, after, unified_diff(src.text, after, str(owner)),
                                    file_edits, src.identity.sha256))
        self._check_result(edits, out)
        return out

    def with_planned(self, planned: Sequence[FileEdit]) -> ConfigFile:
        """This config as it will be once ``planned`` is written (nothing is written): each planned text
        parsed with its reference parse, the whole config resolved again."""
        shadow = ConfigFile(self.path, self.env, self.main)
        shadow.install = self.install
        shadow.files = dict(self.files)
        for fe in planned:
            src = self.files[fe.path]
            shadow.files[fe.path] = SourceFile(src.path, fe.after.encode("utf-8"), fe.after,
                                               parse(fe.after, source=str(fe.path)), src.identity, src.mode,
                                               src.uid, src.gid, src.is_symlink, src.via)
        shadow.main = shadow.files[self.path]
        shadow.data = shadow._resolve(shadow.main, shadow.main.doc.value, (), 0, frozenset({self.path}))
        return shadow

    def _check_result(self, edits: Mapping[KeyPath, object], planned: Sequence[FileEdit]) -> None:
        """Resolve the whole config again with the planned texts: exactly the edits, meta kept."""
        if not planned:
            return
        data = self.with_planned(planned).data
        for p, value in edits.items():
            got = get_path(data, p)
            if (value is DELETE and got is not MISSING) or (value is not DELETE and not same_value(got, value)):
                raise MoltirError(f"refusing to write: after the edit {_dotted(p)} would not be {value!r} "
                                  "(an include or a merge overrides it)",
                                  hint="edit that key by hand; moltir changed nothing", exit_code=EXIT_STEP_FAILED)
        for protected in PROTECTED_PATHS:
            if not same_value(get_path(data, protected), get_path(self.data, protected)):
                raise MoltirError(f"refusing to write: the edit would change {_dotted(protected)}",
                                  hint="this is a moltir bug, please report it", exit_code=EXIT_STEP_FAILED)

    def preimage_name(self, path: Path) -> str:
        """Name of a file's pre-image inside the case: ``preimage/<path relative to the config dir>``."""
        try:
            rel = path.relative_to(self.config_dir).as_posix()
        except ValueError:
            rel = path.name
        return "preimage/" + rel.replace("..", "_")

    def write(self, file_edits: Sequence[FileEdit], case: Case | None = None, *,
              refuse_invalid: bool = True) -> list[WriteResult]:
        """Write planned edits: refuse read-only configs, symlinks and files changed since load, and
        (``refuse_invalid``) an edit the release's validator rejects; save each pre-image into the case
        first; atomic write with the same mode and owner. If a later file fails, the files already
        written are put back from their pre-images. ``refuse_invalid=False`` (restore putting back the
        recorded values) validates and records the verdict but writes anyway."""
        changed = [fe for fe in file_edits if fe.changed]
        if not changed:
            return []
        reason = self.readonly_reason()
        if reason:
            raise env_error(f"the OpenClaw config is read-only ({reason}): moltir will not edit {self.path}",
                            "unset the variable if the config may be edited here, or make the change in the "
                            "system that manages the config (e.g. your Nix module)")
        for fe in changed:
            self._check_unchanged(fe)
            remove_stale_temps(fe.path)
        self._validate(changed, refuse=refuse_invalid)
        results: list[WriteResult] = []
        written: list[tuple[SourceFile, FileEdit]] = []
        try:
            for fe in changed:
                src = self.files[fe.path]
                preimage = None
                if case is not None:
                    preimage = self.preimage_name(fe.path)
                    case.write_file(preimage, src.raw)
                self._check_unchanged(fe)  # as late as possible before the rename
                data = fe.after.encode("utf-8")
                atomic_write(fe.path, data, mode=src.mode, owner=(src.uid, src.gid))
                written.append((src, fe))
                results.append(WriteResult(fe.path, fe.before_sha256, sha256(data), preimage))
        except BaseException:
            for src, _fe in reversed(written):
                with contextlib.suppress(MoltirError):
                    atomic_write(src.path, src.raw, mode=src.mode, owner=(src.uid, src.gid))
            raise
        return results

    def start_validation(self, planned: Sequence[FileEdit]) -> None:
        """Begin the release's validation of this config with ``planned`` in the background (used while
        the gateway drains, so the write that follows finds the verdict ready)."""
        if self.install is not None and planned:
            from moltir.openclaw import validate

            validate.start(self.install, self.with_planned(planned).data)

    def validation_warning(self) -> str | None:
        """One line for the step's warnings when the last write was not validated or is invalid."""
        v = self.validation
        if v is None or v.ok:
            return None
        if v.ok is None:
            return f"the edited config was not checked by the release's validator: {v.how}"
        return f"the release's validator finds the config invalid: {'; '.join(v.problems[:3])}"

    def _validate(self, changed: Sequence[FileEdit], *, refuse: bool = True) -> None:
        """Refuse (nothing written) an edit the installed release's validator rejects for a problem of
        its own making; record the verdict in :attr:`validation`."""
        self.validation = None
        if self.install is None or self.env.get("MOLTIR_VALIDATE") == "0":
            return
        from moltir.openclaw import validate

        verdict = validate.validate(self.install, self.with_planned(changed).data)
        self.validation = verdict
        if verdict.ok is not False or not refuse:
            return
        new = validate.new_problems(verdict, validate.validate(self.install, self.data))
        if not new:
            return  # invalid before moltir's edit already, for the same reasons: the edit adds nothing
        release = f"{self.install.product} {self.install.version or '(release unknown)'}"
        raise MoltirError(f"{release} would reject the edited config ({'; '.join(new[:3])}); nothing was written",
                          hint="this edit does not fit this release: please report it (moltir doctor shows the "
                               "capabilities it used); make the change by hand meanwhile",
                          exit_code=EXIT_STEP_FAILED)

    def _check_unchanged(self, fe: FileEdit) -> None:
        try:
            lst = os.lstat(fe.path)
            raw = fe.path.read_bytes()
        except FileNotFoundError:
            raise MoltirError(f"{fe.path} was removed since moltir read it; nothing written",
                              hint="check who is editing the config, then run the step again",
                              exit_code=EXIT_STEP_FAILED) from None
        except OSError as exc:
            raise os_error(exc, f"reading {fe.path}") from None
        if stat.S_ISLNK(lst.st_mode):
            raise env_error(f"{fe.path} is a symlink; moltir will not write through a link",
                            "replace the link by the file it points to, then run again")
        if sha256(raw) != fe.before_sha256:
            raise MoltirError(f"{fe.path} changed on disk since moltir read it; nothing written",
                              hint="someone (or OpenClaw) edited the config meanwhile: run the step again, "
                                   "moltir will re-read it", exit_code=EXIT_STEP_FAILED)



def _start_of(doc: Document, path: KeyPath) -> int:
    node = doc.node_at(path)
    return node.start if node is not None else doc.root.start



__all__ = ["MISSING", "ConfigFile", "FileEdit", "Identity", "Json5Error", "SourceFile", "WriteResult", "get_path",
           "kind_name", "read_source", "remove_stale_temps", "sha256"]
