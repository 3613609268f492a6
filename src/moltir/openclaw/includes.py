"""OpenClaw's ``$include`` rules, in one place: where includes are, what file one names, how deep they go.

Read from the package (2026.9.6 ``dist/includes-*.mjs``, ``IncludeProcessor``; docs/gateway/configuration):

* an object with a ``$include`` key is replaced by the parsed file (a string), or by the deep merge of
  several files (a list of strings); its other keys are merged over the included value;
* objects inside arrays are processed too;
* the path is taken literally: absolute as written, else relative to the directory of the file that
  holds the ``$include`` (includes are resolved *before* ``${VAR}`` substitution, so neither ``${VAR}``
  nor ``~`` is expanded in an include path);
* a processor at depth *d* (the config itself is depth 0) refuses to load an include when
  ``d >= 10``: includes nest at most :data:`MAX_INCLUDE_DEPTH` levels below the config;
* a file already on the chain is a circular include.

Both readers of includes use these rules: :class:`moltir.openclaw.configfile.ConfigFile`, strict (it
refuses what OpenClaw would refuse, before editing), and the evidence snapshot
(:mod:`moltir.evidence.configfacts`), lenient (it copies every include it can reach, and notes what
it could not). Confinement to the config directory (``OPENCLAW_INCLUDE_ROOTS``) is the editor's rule
only: an include outside it is still evidence.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

INCLUDE_KEY: Final = "$include"
MAX_INCLUDE_DEPTH: Final = 10


def include_specs(value: object) -> list[str] | None:
    """The file names of one ``$include`` value, or None when it is not a string or a non-empty list
    of strings (OpenClaw refuses such a value)."""
    specs = [value] if isinstance(value, str) else value
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) and s for s in specs):
        return None
    return list(specs)


def include_target(spec: str, including: Path) -> Path:
    """The file an include names, as OpenClaw resolves it (literal, relative to the including file)."""
    return Path(os.path.normpath(including.parent / spec))


def too_deep(level: int) -> bool:
    """Whether an include ``level`` files below the config (1 = named by the config) is refused."""
    return level > MAX_INCLUDE_DEPTH


def merge_included(target: Any, source: Any) -> Any:
    """OpenClaw's include merge: objects recursively, arrays concatenate, otherwise source wins (the
    files of an include list in order; then the keys next to the ``$include`` over the result)."""
    if isinstance(target, dict) and isinstance(source, dict):
        out = dict(target)
        for k, v in source.items():
            out[k] = merge_included(out[k], v) if k in out else v
        return out
    if isinstance(target, list) and isinstance(source, list):
        return [*target, *source]
    return source


def find_includes(value: Any, where: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every object holding ``$include`` in one parsed file, in document order, with its key path.

    Keys next to an ``$include`` are searched too (they are merged over the included value); the
    included files themselves are not opened here."""
    if isinstance(value, Mapping):
        if INCLUDE_KEY in value:
            yield where, value
        for key, item in value.items():
            if key != INCLUDE_KEY:
                yield from find_includes(item, (*where, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_includes(item, (*where, str(index)))
