"""The span tree the scanner builds (every key, value and comma with its offsets), the error every
refusal raises, and the types an edit is written in (key paths, :data:`DELETE`, splices)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from moltir.errors import EXIT_USAGE, MoltirError

PathKey = str | int
Path = tuple[PathKey, ...]
KeyPath = tuple[str, ...]


class Json5Error(MoltirError):
    """The file cannot be read or edited safely: names file, line and column. Exit 2."""

    def __init__(self, source: str, line: int, column: int, problem: str,
                 hint: str = "fix the file by hand; moltir changed nothing") -> None:
        super().__init__(f"{source}:{line}:{column}: {problem}", hint=hint, exit_code=EXIT_USAGE)
        self.source = source
        self.line = line
        self.column = column
        self.problem = problem


class _Delete:
    _instance: _Delete | None = None

    def __new__(cls) -> _Delete:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"

    def __reduce__(self) -> str:
        return "DELETE"


DELETE: Final = _Delete()
"""Value for :func:`set_values`: remove the key (and its comma, and its line when alone on it)."""


NodeKind = Literal["object", "array", "string", "number", "literal"]


@dataclass
class Node:
    kind: NodeKind
    start: int  # offset of the first character
    end: int  # offset one past the last character
    value: Any = None  # the plain Python value of this node
    quote: str = ""  # strings: the quote character used
    members: list[Member] = field(default_factory=list)  # objects
    items: list[Item] = field(default_factory=list)  # arrays

    def member(self, key: str) -> Member | None:
        for m in self.members:
            if m.key == key:
                return m
        return None


@dataclass
class Member:
    key: str
    key_start: int
    key_end: int
    key_quote: str  # "" for an identifier key
    value: Node
    comma: int | None = None  # offset of the comma after the value


@dataclass
class Item:
    value: Node
    comma: int | None = None


@dataclass(frozen=True)
class Splice:
    """Replace ``text[start:end]`` by ``new`` (``start == end``: a pure insertion)."""

    start: int
    end: int
    new: str
