"""Comment-preserving JSON5 edits: a span-aware scanner plus byte-range splices.

Why not load -> modify -> dump: the ``json5`` library cannot keep comments, quoting, trailing
commas or layout (shared/research/ir-anchors.md §C.1), and OpenClaw's own writers already
strip comments. So moltir reads a config twice:

* for **meaning** with ``json5.loads`` (the reference parser), and
* for **where** with the small scanner (:mod:`.scanner`), which records the span of every key, value,
  comma and comment.

An edit is a set of splices on the original text: a replaced value keeps everything around
it; an inserted key goes on its own line with the indentation (and key-quoting style) of its
siblings, or inline when the object is written on one line; a deleted key takes its line (or
its comma) with it. The result is re-parsed and must equal the original value with exactly
the requested changes, else nothing is returned.

Refused (``Json5Error``, exit 2, message ``<file>:<line>:<column>: <problem>``): syntax errors,
duplicate keys (JSON5 keeps the last one silently; an operator reading the file would see
the first), and a path that runs through a value that is not an object.

Known limits (documented, tested): a deleted member takes the comments on its own line with
it; deleting the only member of a one-line object gives ``{}`` (so ``{ }`` does not survive
an insert-then-delete round trip).

Modules: :mod:`.tree` (the span tree, :class:`Json5Error`, :data:`DELETE`), :mod:`.scanner`,
:mod:`.document` (:func:`parse`, :func:`scan_value`), :mod:`.reference` (the ``json5`` reference
parse, :func:`same_value`), :mod:`.render` and :mod:`.layout` (new text in the document's style),
:mod:`.editor` (:func:`set_values` and its splices), :mod:`.diff`.
"""

from __future__ import annotations

from moltir.openclaw.json5edit.diff import redact_secrets, unified_diff
from moltir.openclaw.json5edit.document import Document, parse, scan_value
from moltir.openclaw.json5edit.editor import apply_splices, compute_splices, expected_value, set_values
from moltir.openclaw.json5edit.reference import reference_parse, same_value
from moltir.openclaw.json5edit.tree import (
    DELETE,
    Item,
    Json5Error,
    KeyPath,
    Member,
    Node,
    NodeKind,
    Path,
    PathKey,
    Splice,
)

__all__ = ["DELETE", "Document", "Item", "Json5Error", "KeyPath", "Member", "Node", "NodeKind", "Path", "PathKey",
           "Splice", "apply_splices", "compute_splices", "expected_value", "parse", "redact_secrets",
           "reference_parse", "same_value", "scan_value", "set_values", "unified_diff"]
