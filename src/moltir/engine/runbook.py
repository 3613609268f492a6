"""Runbooks: JSON5 files naming ordered steps, validated on load with file:line errors.

Schema::

    { name: "contain", description: "...",
      steps: [ { id: "stop-gateway", action: "gateway.stop", with: {...},
                 on_failure: "abort" | "continue", timeout_s: 30 }, ... ] }

Shipped runbooks live in the package (``moltir/runbooks``, src/moltir/runbooks in the repo). A
user's own runbook is passed with ``--runbook PATH``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from moltir import actions
from moltir.errors import usage_error
from moltir.text import check_ident, shown

STEP_KEYS = frozenset({"id", "action", "with", "on_failure", "timeout_s", "description"})
TOP_KEYS = frozenset({"name", "description", "steps", "$schema"})


@dataclass(frozen=True)
class Step:
    id: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    on_failure: str = "abort"
    timeout_s: float | None = None
    description: str = ""


@dataclass(frozen=True)
class Runbook:
    name: str
    description: str
    steps: tuple[Step, ...]
    source: str


def shipped_dir() -> Path:
    """The folder of shipped runbooks: ``moltir/runbooks/``, package data (``moltir runbook show NAME``
    prints one to copy and edit)."""
    return Path(str(importlib.resources.files("moltir"))) / "runbooks"


def shipped_names() -> list[str]:
    return sorted(p.name.removesuffix(".json5") for p in shipped_dir().glob("*.json5"))


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".json5", ".json") or "/" in name_or_path:
        if not path.is_file():
            raise usage_error(f"runbook {name_or_path}: no such file", "pass the path of a .json5 runbook")
        return path
    candidate = shipped_dir() / f"{name_or_path}.json5"
    if not candidate.is_file():
        names = shipped_names()
        raise usage_error(f"no shipped runbook named {name_or_path!r}",
                          (f"choose one of: {', '.join(names)}" if names else
                           f"no runbook is shipped in {shipped_dir()} (a broken install?)")
                          + ", or pass --runbook PATH")
    return candidate


class _Locator:
    """Line numbers for error messages, from the span-aware JSON5 scanner."""

    def __init__(self, text: str, source: str) -> None:
        from moltir.openclaw import json5edit

        self.doc = json5edit.parse(text, source=source)

    def line(self, path: Sequence[str | int]) -> int:
        try:
            return self.doc.locate(tuple(path))[0]
        except Exception:  # the location is a nicety; never let it hide the real error
            return 0


class _Failer:
    """Raises the one-line usage error of a runbook problem, at ``file:line`` of the key involved."""

    def __init__(self, locator: _Locator, source: str) -> None:
        self.locator = locator
        self.source = source

    def __call__(self, where: Sequence[str | int], message: str, hint: str = "") -> NoReturn:
        line = self.locator.line(where)
        at = f"{self.source}:{line}" if line else self.source
        raise usage_error(f"runbook {at}: {message}", hint or "fix the runbook (nothing was run)")


def load(path: Path) -> Runbook:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise usage_error(f"runbook {source}: cannot read it ({exc.strerror})") from None
    from moltir.openclaw.json5edit import Json5Error

    try:
        locator = _Locator(text, source)
    except Json5Error as exc:  # bad syntax or duplicate keys, with file:line:col
        raise usage_error(f"runbook {exc.message}", "fix the runbook (nothing was run)") from None
    data = locator.doc.value
    fail = _Failer(locator, source)
    if not isinstance(data, dict):
        fail((), "the runbook must be an object with name and steps")
    for key in data:
        if key not in TOP_KEYS:
            fail((key,), f"unknown key {key!r} (allowed: name, description, steps)")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        fail(("name",), "'name' must be a non-empty string")
    if not check_ident(name):
        fail(("name",), f"'name' {shown(name, 80)!s} is not a plain name: letters, digits, '-' and '_' only "
             "(at most 64; it names files in the case folder)")
    steps_raw = data.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        fail(("steps",), "'steps' must be a non-empty list")
    seen: set[str] = set()
    steps = [_load_step(fail, i, raw, seen) for i, raw in enumerate(steps_raw)]
    return Runbook(str(name), str(data.get("description", "")), tuple(steps), source)


def _load_step(fail: _Failer, i: int, raw: Any, seen: set[str]) -> Step:
    """One step, checked: known keys, a plain unique id, a known action, its parameters, on_failure, timeout_s."""
    where: tuple[str | int, ...] = ("steps", i)
    if not isinstance(raw, dict):
        fail(where, f"step {i + 1} must be an object")
    for key in raw:
        if key not in STEP_KEYS:
            fail((*where, key), f"step {i + 1}: unknown key {key!r} "
                 "(allowed: id, action, with, on_failure, timeout_s, description)")
    sid = raw.get("id")
    if not isinstance(sid, str) or not sid:
        fail((*where, "id") if "id" in raw else where, f"step {i + 1}: 'id' must be a non-empty string")
    if not check_ident(sid):
        fail((*where, "id"), f"step {i + 1}: id {shown(sid, 80)!s} is not a plain name: letters, digits, '-' "
             "and '_' only (at most 64; it names files in the case folder)")
    if sid in seen:
        fail((*where, "id"), f"duplicate step id {sid!r}")
    seen.add(sid)
    known = actions.available()
    action = raw.get("action")
    if not isinstance(action, str) or action not in known:
        got = action if isinstance(action, str) else type(action).__name__
        fail((*where, "action") if "action" in raw else where,
             f"step {sid!r}: unknown action {got!r}",
             f"known actions: {', '.join(sorted(known))}")
    params = raw.get("with", {})
    if not isinstance(params, dict):
        fail((*where, "with"), f"step {sid!r}: 'with' must be an object")
    merged = _step_params(fail, where, sid, action, params)
    on_failure = raw.get("on_failure", "abort")
    if on_failure not in ("abort", "continue"):
        fail((*where, "on_failure"), f"step {sid!r}: on_failure must be 'abort' or 'continue'")
    timeout = raw.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        fail((*where, "timeout_s"), f"step {sid!r}: timeout_s must be a positive number")
    return Step(sid, action, merged, on_failure, float(timeout) if timeout else None,
                str(raw.get("description", "")))


def _step_params(fail: _Failer, where: tuple[str | int, ...], sid: str, action: str,
                 params: dict[str, Any]) -> dict[str, Any]:
    """The action's defaults with the step's ``with`` over them, each checked against the action's params."""
    cls = actions.load(action)
    merged: dict[str, Any] = {k: p.default for k, p in cls.params.items()}
    for key, value in params.items():
        spec = cls.params.get(key)
        if spec is None:
            allowed = ", ".join(sorted(cls.params)) or "none"
            fail((*where, "with", key), f"step {sid!r}: {action} has no parameter {key!r} (allowed: {allowed})")
        ok_type = (value is None and spec.default is None) or (
            isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types))
        if not ok_type:
            names = "/".join(t.__name__ for t in spec.types)
            fail((*where, "with", key), f"step {sid!r}: {action} parameter {key!r} must be {names}, "
                 f"not {type(value).__name__}")
        if spec.choices is not None and value not in spec.choices:
            fail((*where, "with", key), f"step {sid!r}: {action} parameter {key!r} must be one of "
                 f"{', '.join(map(str, spec.choices))}, not {shown(repr(value), 80)!s}")
        merged[key] = value
    return merged
