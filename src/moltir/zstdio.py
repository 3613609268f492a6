"""zstd, for what OpenClaw 2026.9 compresses: large ``transcript_events`` rows (``event_zstd``) and
cold ``*.jsonl.zst`` transcript archives.

Python 3.14 has ``compression.zstd``; before it, its backport ``backports.zstd`` (a dependency of
moltir there) has the same API. Both readers here are bounded: a row decodes to at most the size
it records, an archive is streamed (nothing decompressed is written anywhere).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import IO, Any, Final, cast

_MODULES = ("compression.zstd", "backports.zstd")
MAX_EVENT: Final = 4194304  # event_utf8_bytes' bound in OpenClaw's transcript_events schema


def _module() -> Any | None:
    for name in _MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def available() -> bool:
    return _module() is not None


def row_decoder() -> Callable[[bytes, int], bytes] | None:
    """``decode(blob, limit)``: at most ``limit + 1`` bytes of the blob's content (one more than the
    row records, so a wrong size shows); None without a zstd module."""
    mod = _module()
    if mod is None:
        return None

    def decode(blob: bytes, limit: int) -> bytes:
        return bytes(mod.ZstdDecompressor().decompress(blob, max_length=limit + 1))
    return decode


def decode_row(blob: object, size: object,
               decode: Callable[[bytes, int], bytes] | None) -> tuple[bytes | None, str]:
    """(content, "") of a ``transcript_events.event_zstd`` blob whose ``event_utf8_bytes`` is ``size``,
    or (None, why not): no decoder, no valid size, a damaged blob, a size that does not match."""
    if decode is None:
        return None, "event_zstd (zstd-compressed) not decoded: install backports.zstd (or use Python 3.14+)"
    if not isinstance(blob, bytes) or not isinstance(size, int) or not 0 < size <= MAX_EVENT:
        return None, "event_zstd without a valid event_utf8_bytes"
    try:
        data = decode(blob, size)
    except Exception as exc:  # a damaged blob: the caller names the row and goes on
        return None, f"event_zstd does not decode ({type(exc).__name__})"
    if len(data) != size:
        return None, f"event_zstd decodes to {len(data)} bytes, not the recorded {size}"
    return data, ""


def open_stream(path: str | os.PathLike[str]) -> IO[bytes]:
    """The decompressed bytes of a ``.zst`` file, read as a stream; ``RuntimeError`` without a zstd
    module (callers name the file as not read)."""
    mod = _module()
    if mod is None:
        raise RuntimeError("no zstd module (install backports.zstd, or use Python 3.14+)")
    return cast("IO[bytes]", mod.open(path, "rb"))
