"""One JSON-lines reader for triage's line sources: the JSONL transcripts, the exported audit ledger and
the (decompressed) cold archives.

A line is numbered from 1 as it stands in the file (or the decompressed stream), blank lines included;
a blank line is skipped; a line that does not parse as JSON is given as :data:`NOT_JSON` (the caller
turns it into an ``undecoded`` event citing that line: never a silent gap). Errors of the stream itself
(a damaged zstd frame) are not caught here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Final

NOT_JSON: Final = object()  # the value of a line that is not JSON (compare with ``is``)


def json_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value or :data:`NOT_JSON`) of every line that is not blank."""
    loads = json.loads
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = loads(raw)
        except ValueError:  # also UnicodeDecodeError
            value = NOT_JSON
        yield lineno, value
