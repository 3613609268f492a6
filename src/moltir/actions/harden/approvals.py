"""``harden.exec_approvals``: the exec approvals defaults ``security: allowlist``, ``ask: on-miss``,
``askFallback: deny``, written where the installed release keeps them (:mod:`.exec_store`: a file, or
the state store's row), the document's pre-image saved in the case and recorded (restore.json section
``harden``, key ``approvals``) BEFORE the write, so ``moltir harden --undo`` puts it back exactly.

Decisions (the issue is silent on them):

* only ``defaults`` changes; per-agent policies, allowlists and the socket are kept as they are;
* a value already at least as strict stays (``security: deny`` is stricter than ``allowlist``,
  ``ask: always`` than ``on-miss``): hardening never loosens. OpenClaw's own order (2026.1.29 and
  2026.9.6 ``docs/tools/exec-approvals.md``): security ``deny`` < ``allowlist`` < ``full``, ask
  ``always`` < ``on-miss`` < ``off``, askFallback ``deny`` < ``allowlist`` < ``full``;
* a document that does not parse as OpenClaw's version-1 document is left alone and the step refused
  (OpenClaw itself ignores such a file; overwriting it could lose allowlists);
* on a SQLite release whose state store does not exist yet, OpenClaw's own ``openclaw approvals get``
  runs once first: it creates the store (and changes nothing else).

No audit check targets these defaults (neither 2026.1.29's nor 2026.9.6's ``security audit`` reads
them: 2026.9.6's ``tools.exec.security_full_configured`` reads ``tools.exec.security`` in the config),
so the step is verified by reading the setting back: from the store, and through the release's own
``openclaw approvals get --json`` (its output holds the socket token: parsed in memory, never kept).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from moltir.actions.base import Action, Change, Plan, StepContext, StepResult
from moltir.actions.harden import exec_store
from moltir.actions.harden.config_step import SECTION
from moltir.errors import EXIT_STEP_FAILED, MoltirError, verify_error

WANTED: Final[Mapping[str, str]] = {"security": "allowlist", "ask": "on-miss", "askFallback": "deny"}
#: strictest first
ORDER: Final[Mapping[str, tuple[str, ...]]] = {"security": ("deny", "allowlist", "full"),
                                               "ask": ("always", "on-miss", "off"),
                                               "askFallback": ("deny", "allowlist", "full")}
SETTING: Final = "exec_approvals"
PREIMAGE: Final = "preimage/exec-approvals"


def strict_enough(key: str, value: object) -> bool:
    order = ORDER[key]
    return value in order and order.index(str(value)) <= order.index(WANTED[key])


@dataclass
class Todo:
    snap: exec_store.Snapshot | None  # None: the SQLite store does not exist yet
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (key, before, after)
    new_raw: str = ""
    refusal: str = ""


def compute(install: Any) -> Todo:
    kind, path = exec_store.locate(install)
    if kind == "sqlite" and not exec_store.has_table(path):
        return Todo(None, [(k, "(absent)", v) for k, v in WANTED.items()])
    snap = exec_store.read(install)
    doc = exec_store.parse(snap.raw)
    if doc is None:
        return Todo(snap, refusal=f"{snap.where()} is not an exec approvals document OpenClaw reads (version 1): "
                                  "left as it is; fix it with 'openclaw approvals set', then run 'moltir harden' again")
    defaults = dict(doc.get("defaults") or {})
    todo = Todo(snap)
    for key, want in WANTED.items():
        if not strict_enough(key, defaults.get(key)):
            todo.changes.append((key, str(defaults.get(key, "(absent)")), want))
            defaults[key] = want
    if todo.changes:
        todo.new_raw = exec_store.serialize({**doc, "defaults": defaults})
    return todo


def _bootstrap(ctx: StepContext) -> None:
    """Let the release create its state store (``openclaw approvals get`` opens it); nothing without a
    binary (the step is then skipped with the reason)."""
    if ctx.install.binary is None:
        return
    try:
        ctx.install.run_cli("approvals", "get", "--json", timeout_s=float(ctx.timeout_s or 120))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MoltirError(f"'openclaw approvals get' did not run: {exc}", hint="check the install with 'moltir doctor'",
                          exit_code=EXIT_STEP_FAILED) from None


def record(ctx: StepContext, snap: exec_store.Snapshot, new_raw: str, changed: list[str]) -> None:
    """Section ``harden``, key ``approvals``: the FIRST pre-image (before any harden step), its hash, the
    hash of what moltir wrote last; the pre-image itself in the case (it holds the socket token)."""
    section: dict[str, Any] = dict(ctx.case.restore_section(SECTION) or {})
    entry = dict(section.get("approvals") or {})
    if not entry:
        entry = {"kind": snap.kind, "path": str(snap.path), "preimage": None, "preimage_sha256": snap.sha256,
                 "mode": None if snap.mode is None else f"{snap.mode:04o}"}
        if snap.raw is not None:
            data = (json.dumps(dict(snap.row or {})) if snap.kind == "sqlite" else snap.raw).encode("utf-8")
            entry["preimage"] = PREIMAGE + (".row.json" if snap.kind == "sqlite" else ".json")
            ctx.case.write_file(str(entry["preimage"]), data, overwrite=True)
    entry["written_sha256"] = exec_store.Snapshot(snap.kind, snap.path, new_raw).sha256
    section["approvals"] = entry
    section["settings"] = {**dict(section.get("settings") or {}), SETTING: changed}
    ctx.case.update_restore(SECTION, section)


def read_back_cli(install: Any, timeout_s: float) -> dict[str, Any] | None:
    """``file.defaults`` as the release's own ``openclaw approvals get --json`` reports them; None when
    there is no binary to ask. The output is parsed here and dropped (it may hold the socket token)."""
    if install.binary is None:
        return None
    try:
        proc = install.run_cli("approvals", "get", "--json", timeout_s=timeout_s)
        out = proc.stdout.decode("utf-8", "replace")
        doc = json.loads(out[out.index("{"):])  # 2026.1.29 may print notices first
        defaults = doc["file"]["defaults"]
    except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
        raise verify_error("'openclaw approvals get --json' did not report the exec approvals",
                           "run it by hand to see why") from None
    return dict(defaults) if isinstance(defaults, Mapping) else {}


class HardenExecApprovals(Action):
    name = "harden.exec_approvals"
    description = "Exec approvals defaults: security allowlist, ask on-miss, askFallback deny (where kept)."

    def plan(self, ctx: StepContext) -> Plan:
        todo = compute(ctx.install)
        if todo.refusal:
            return Plan("exec approvals: refused", warnings=(todo.refusal,), already_done=True)
        where = exec_store.locate(ctx.install)
        target = f"{where[1]}#{exec_store.TABLE}" if where[0] == "sqlite" else str(where[1])
        changes = tuple(Change("config", f"{target} defaults.{k}", b, a) for k, b, a in todo.changes)
        notes = () if todo.snap is not None else ("the state store does not exist yet: 'openclaw approvals get' "
                                                  "creates it first",)
        return Plan("exec approvals: already hardened" if not todo.changes
                    else f"exec approvals: set {len(todo.changes)} default(s) in {target}", changes,
                    already_done=not todo.changes, warnings=notes)

    def apply(self, ctx: StepContext) -> StepResult:
        todo = compute(ctx.install)
        if todo.snap is None:
            _bootstrap(ctx)
            todo = compute(ctx.install)
            if todo.snap is None:
                reason = ("the release's state store has no exec approvals table (and 'openclaw approvals get' "
                          "did not create it): run OpenClaw once, then 'moltir harden' again")
                return StepResult("skipped", f"exec approvals: not changed: {reason}", {"refused": reason}, (reason,))
        if todo.refusal:
            return StepResult("skipped", f"exec approvals: not changed: {todo.refusal}", {"refused": todo.refusal},
                              (todo.refusal,))
        if not todo.changes:
            return StepResult("already", "exec approvals: already hardened", {"changed": []})
        changed = [f"defaults.{k}" for k, _b, _a in todo.changes]
        record(ctx, todo.snap, todo.new_raw, changed)
        ctx.event("harden.exec_approvals", where=todo.snap.where(), changed=changed)
        exec_store.write(todo.snap, todo.new_raw, owner=ctx.install.run_as)
        return StepResult("done", f"exec approvals: set {', '.join(changed)} in {todo.snap.where()}",
                          {"setting": SETTING, "where": todo.snap.where(), "changed": changed})

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        if result.status == "skipped":
            return
        todo = compute(ctx.install)
        if todo.changes or todo.refusal:
            raise verify_error(f"exec approvals defaults not in effect at {exec_store.locate(ctx.install)[1]}",
                               "someone (or OpenClaw) rewrote them meanwhile; run 'moltir harden' again")
        seen = read_back_cli(ctx.install, float(ctx.timeout_s or 120))
        weak = [k for k in WANTED if seen is not None and not strict_enough(k, seen.get(k))]
        if weak:
            raise verify_error(f"'openclaw approvals get' does not report the hardened defaults: {', '.join(weak)}",
                               "the release reads its approvals from elsewhere; report it")


def undo_state(entry: Mapping[str, Any], force: bool) -> str:
    """``"todo"``, ``"already"`` (the document is as before harden) or ``"conflict"`` (changed since
    moltir wrote it, left unless ``--force``)."""
    kind, path = str(entry.get("kind")), Path(str(entry.get("path")))
    if kind == "sqlite" and not exec_store.has_table(path):
        return "already" if entry.get("preimage_sha256") is None else "conflict"
    now = exec_store.Snapshot(kind, path, exec_store.read_raw(exec_store.Snapshot(kind, path, None))).sha256
    if now == entry.get("preimage_sha256"):
        return "already"
    return "todo" if now == entry.get("written_sha256") or force else "conflict"


def undo_apply(ctx: StepContext, entry: Mapping[str, Any]) -> None:
    """Put the recorded pre-image back (bytes and mode, or the row's every column; or none at all)."""
    kind, path = str(entry.get("kind")), Path(str(entry.get("path")))
    raw: bytes | None = None
    row: dict[str, Any] | None = None
    if entry.get("preimage"):
        data = (ctx.case.dir / str(entry["preimage"])).read_bytes()
        row = json.loads(data) if kind == "sqlite" else None
        text = str(row["raw_json"]).encode("utf-8") if row is not None else data
        if hashlib.sha256(text).hexdigest() != entry.get("preimage_sha256"):
            raise MoltirError(f"the saved exec approvals pre-image of {path} does not match its recorded hash",
                              hint="the case was altered: put the approvals back by hand",
                              exit_code=EXIT_STEP_FAILED)
        raw = data
    mode = int(str(entry["mode"]), 8) if entry.get("mode") else None
    owner = None
    if kind == "file" and path.exists():
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
    exec_store.put_back(kind, path, row, raw, mode, owner)
