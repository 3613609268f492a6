"""Triage rules as data: JSON5 files, validated on load with ``file:line`` errors.

A rule file is ``{rules: [RULE, ...]}``; a RULE::

    {id: "pipe-to-shell", level: "high", title: "...", description: "...", remediation: "...",
     match: {kind: "tool_call", command: {regex: "curl[^|]*\\|\\s*sh"}, any: [{...}, {...}]}}

``match`` names event fields (:data:`FIELDS`); a field's condition is a string (equal), a list of
strings (one of them), or an object with one of ``equals``, ``in``, ``regex`` (Python ``re``,
searched, case-insensitive). ``any`` is a list of such match objects, at least one of which must
hold as well. The shipped rules are in ``moltir/triage/rulepack/``; ``--rules DIR`` adds every
``*.json5`` of DIR (an id used twice is an error).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from moltir.errors import env_error, usage_error
from moltir.text import shown

LEVELS: Final = ("informational", "low", "medium", "high", "critical")
FIELDS: Final = ("kind", "session_id", "agent_id", "session_key", "channel", "account", "role", "sender", "sender_id",
                 "tool", "call_id", "command", "path", "url", "action", "text", "is_error", "allowed", "allowlisted",
                 "credential")
RULE_KEYS: Final = ("id", "level", "title", "description", "remediation", "match")
REQUIRED: Final = ("id", "level", "title", "description", "remediation", "match")
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

Cond = Callable[[object], bool]


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "rulepack"


def level_rank(level: str) -> int:
    return LEVELS.index(level)


@dataclass(frozen=True)
class Rule:
    id: str
    level: str
    title: str
    description: str
    remediation: str
    origin: str  # file:line
    conds: tuple[tuple[str, Cond], ...]
    any_of: tuple[tuple[tuple[str, Cond], ...], ...]
    kind: str | None = None  # the event kind the rule requires (``match.kind`` as a string), if any

    def matches(self, fields: Mapping[str, Any]) -> bool:
        # plain loops, not all()/any() over generators: this runs for every event and rule
        get = fields.get
        for name, cond in self.conds:
            if not cond(get(name)):
                return False
        if not self.any_of:
            return True
        for group in self.any_of:
            for name, cond in group:
                if not cond(get(name)):
                    break
            else:
                return True
        return False


class _Failer:
    def __init__(self, text: str, source: str) -> None:
        from moltir.openclaw import json5edit

        self.source = source
        try:
            self.doc = json5edit.parse(text, source=source)
        except json5edit.Json5Error as exc:
            raise usage_error(f"triage rules {exc.message}", "fix the rule file (nothing was read)") from None

    def line(self, where: Sequence[str | int]) -> int:
        try:
            return self.doc.locate(tuple(where))[0]
        except Exception:  # a location is a nicety; never let it hide the real error
            return 0

    def __call__(self, where: Sequence[str | int], message: str) -> NoReturn:
        line = self.line(where)
        raise usage_error(f"triage rules {self.source}{f':{line}' if line else ''}: {message}",
                          "fix the rule file (nothing was read)")


def _cond(fail: _Failer, where: list[str | int], spec: object) -> Cond:
    if isinstance(spec, str | bool | int) and not isinstance(spec, float):
        return lambda v: v == spec
    if isinstance(spec, list) and spec and all(isinstance(s, str) for s in spec):
        options = frozenset(spec)
        return lambda v: isinstance(v, str) and v in options
    if isinstance(spec, dict) and len(spec) == 1:
        (op, arg), = spec.items()
        if op == "equals" and isinstance(arg, str | bool | int):
            return lambda v: v == arg
        if op == "in" and isinstance(arg, list) and arg and all(isinstance(s, str) for s in arg):
            opts = frozenset(arg)
            return lambda v: isinstance(v, str) and v in opts
        if op == "regex" and isinstance(arg, str):
            try:
                rx = re.compile(arg, re.IGNORECASE)
            except re.error as exc:
                fail([*where, op], f"bad regex ({exc})")
            return lambda v: isinstance(v, str) and rx.search(v) is not None
    fail(where, "a condition is a string, a non-empty list of strings, or one of {equals: X}, {in: [...]}, "
                "{regex: \"...\"}")


def _match(fail: _Failer, where: list[str | int], spec: object, *, top: bool) -> tuple[Any, ...]:
    if not isinstance(spec, dict) or not spec:
        fail(where, "'match' must be a non-empty object of event fields")
    conds: list[tuple[str, Cond]] = []
    groups: list[tuple[tuple[str, Cond], ...]] = []
    for name, value in spec.items():
        if name == "any" and top:
            if not isinstance(value, list) or not value:
                fail([*where, name], "'any' must be a non-empty list of match objects")
            groups += [_match(fail, [*where, name, i], v, top=False)[0] for i, v in enumerate(value)]
        elif name in FIELDS:
            conds.append((name, _cond(fail, [*where, name], value)))
        else:
            fail([*where, name], f"unknown event field {shown(name, 60)!r} (fields: {', '.join(FIELDS)}"
                                 f"{', any' if top else ''})")
    return tuple(conds), tuple(groups)


def _rule(fail: _Failer, i: int, raw: object) -> Rule:
    where: list[str | int] = ["rules", i]
    if not isinstance(raw, dict):
        fail(where, "a rule must be an object")
    for key in raw:
        if key not in RULE_KEYS:
            fail([*where, key], f"unknown key {shown(key, 60)!r} (allowed: {', '.join(RULE_KEYS)})")
    for key in REQUIRED:
        if key not in raw:
            fail(where, f"rule {i + 1} has no {key!r}")
        if key != "match" and (not isinstance(raw[key], str) or not raw[key].strip()):
            fail([*where, key], f"{key!r} must be a non-empty string")
    if not _ID.match(raw["id"]):
        fail([*where, "id"], "'id' must be lower-case letters, digits, '-', '_' or '.' (at most 64)")
    if raw["level"] not in LEVELS:
        fail([*where, "level"], f"'level' must be one of {', '.join(LEVELS)}")
    conds, groups = _match(fail, [*where, "match"], raw["match"], top=True)
    kind = raw["match"].get("kind")
    return Rule(raw["id"], raw["level"], raw["title"], raw["description"], raw["remediation"],
                f"{fail.source}:{fail.line(where)}", conds, groups, kind if isinstance(kind, str) else None)


def load_file(path: Path) -> list[Rule]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise usage_error(f"triage rules {source}: cannot read it ({exc})", "fix the rule file") from None
    fail = _Failer(text, source)
    data = fail.doc.value
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        fail([], "a rule file must be an object with one key, 'rules', a list of rules")
    return [_rule(fail, i, raw) for i, raw in enumerate(data["rules"])]


def load_rules(extra_dirs: Iterable[Path] = ()) -> list[Rule]:
    """The shipped rules, then every ``*.json5`` of each extra folder (sorted by name)."""
    files = sorted(shipped_dir().glob("*.json5"))
    if not files:  # never report CLEAN because the rules are missing
        raise env_error(f"no shipped triage rules in {shipped_dir()} (a broken install?)",
                        "reinstall moltir")
    for d in extra_dirs:
        if not d.is_dir():
            raise usage_error(f"--rules {d}: not a folder", "pass a folder of *.json5 rule files")
        found = sorted(d.glob("*.json5"))
        if not found:
            raise usage_error(f"--rules {d}: no *.json5 rule file in it", "pass a folder of *.json5 rule files")
        files += found
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for f in files:
        for rule in load_file(f):
            if rule.id in seen:
                raise usage_error(f"triage rules {rule.origin}: rule id {rule.id!r} is already used at "
                                  f"{seen[rule.id]}", "give the rule another id")
            seen[rule.id] = rule.origin
            rules.append(rule)
    return rules
