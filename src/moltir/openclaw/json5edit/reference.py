"""The reference parse (``json5.loads``, cached) every edited text is checked against, and the
type-strict equality the checks use."""

from __future__ import annotations

import functools
import math
from typing import Any


@functools.lru_cache(maxsize=32)
def reference_parse(text: str) -> tuple[Any, str | None]:
    """``json5.loads(text)`` and its error message, cached: the one reference parse of a text.

    json5 is a pure-Python parser (~40-90 ms for a 6 KiB config on 2 cores) and one contain
    run meets the same few texts many times (the editor's checks, ``Install.read_config`` in
    every step and every stop-verify poll): each distinct text is parsed once. The value is
    shared: read-only use, copy before mutating.
    """
    import json5  # lazy: keeps `moltir --help` fast

    try:
        return json5.loads(text), None
    except ValueError as exc:
        return None, str(exc)


def same_value(a: Any, b: Any) -> bool:
    """Type-strict deep equality (True is not 1, 1 is not 1.0, NaN equals NaN)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
