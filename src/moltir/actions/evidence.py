"""``evidence.snapshot``: copy, hash and seal the install's logs, transcripts, state and config.

What is collected and how is in :mod:`moltir.evidence` (the ``RULES`` table). With
``credentials: "list"`` (the default) credential files are hashed and listed in the manifest
but not copied; ``credentials: "copy"`` copies them too. ``journal: false`` skips the
systemd user journal.

Idempotent: a case whose evidence is sealed is "already" done. An incomplete attempt (disk
full, Ctrl-C, crash) is moved aside to ``evidence.attempt-N/`` and the snapshot starts over.
"""

from __future__ import annotations

from moltir import evidence
from moltir.actions.base import Action, Change, Param, Plan, StepContext, StepResult
from moltir.errors import verify_error


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


class Snapshot(Action):
    name = "evidence.snapshot"
    description = "Copy logs, transcripts, state and config into the case; hash, manifest, seal."
    params = {
        "credentials": Param((str,), default="list", choices=("list", "copy"),
                             help="'list': hash and list credential files only; 'copy': copy them too"),
        "journal": Param((bool,), default=True, help="also collect the gateway's systemd user journal"),
    }

    def _sealed(self, ctx: StepContext) -> bool:
        return ctx.case.dir.is_dir() and evidence.case_state(ctx.case.dir) == "sealed"

    def plan(self, ctx: StepContext) -> Plan:
        target = f"{ctx.case.dir}/evidence"
        if self._sealed(ctx):
            return Plan(f"evidence already sealed in {ctx.case.dir}", already_done=True)
        creds: evidence.CredentialMode = "copy" if ctx.params.get("credentials") == "copy" else "list"
        est = evidence.estimate(ctx.install, credentials=creds, journal=bool(ctx.params.get("journal", True)),
                                exclude=[ctx.case.dir])
        changes = [Change("file", target, before="no evidence",
                          after=f"{est.files} files, {_size(est.bytes)} (estimated)",
                          detail="copied read-only, hashed; manifest.json, SHA256SUMS, seal.json")]
        roots: dict[str, list[str]] = {}
        for key, path, exists in est.roots:
            if exists:
                roots.setdefault(path, []).append(key)
        changes += [Change("note", path, detail="source root: " + ", ".join(keys)) for path, keys in roots.items()]
        changes += [Change("note", f"journalctl --user -u {u}", detail="source: systemd user journal")
                    for u in est.units]
        if est.listed:
            changes.append(Change("note", f"{est.listed} credential file(s)",
                                  detail="copied" if creds == "copy" else "hashed and listed, not copied"))
        by_cat = ", ".join(f"{k} {_size(v)}" for k, v in sorted(est.by_category.items()))
        summary = f"copy and seal {est.files} files ({_size(est.bytes)}{': ' + by_cat if by_cat else ''})"
        warnings = list(est.notes)
        if est.skipped:
            warnings.append(f"{est.skipped} source(s) will be skipped (symlinks, FIFOs, foreign files ...): "
                            "reasons go to the manifest")
        return Plan(summary, tuple(changes), warnings=tuple(warnings))

    def apply(self, ctx: StepContext) -> StepResult:
        if self._sealed(ctx):
            return StepResult("already", f"evidence already sealed in {ctx.case.dir}")
        creds: evidence.CredentialMode = "copy" if ctx.params.get("credentials") == "copy" else "list"
        res = evidence.snapshot(ctx.case, ctx.install, ctx.journal, credentials=creds,
                                collect_journal=bool(ctx.params.get("journal", True)))
        summary = (f"sealed {res.files} files ({_size(res.bytes)}) in {ctx.case.dir}/evidence; "
                   f"{res.listed} credential(s) listed, {res.skipped} source(s) skipped")
        details = {"files": res.files, "bytes": res.bytes, "listed": res.listed, "skipped": res.skipped,
                   "changed_during_copy": len(res.changed_during_copy), "manifest_sha256": res.manifest_sha256,
                   "sealed_at": res.sealed_at, "gateway_running": res.gateway_running}
        warnings = list(res.warnings)
        if res.gateway_running:
            warnings.insert(0, "the gateway was running: SQLite stores were also copied with the backup API "
                               "(evidence/sqlite-backup/); logs may have grown during the copy")
        return StepResult("done", summary, details, tuple(warnings))

    def verify(self, ctx: StepContext, result: StepResult) -> None:
        # apply() just hashed every byte it wrote: check the seal, manifest, sums and every file's
        # presence and size without reading it all twice ('moltir evidence verify' re-hashes)
        report = evidence.verify(ctx.case.dir, rehash=False)
        if not report.ok:
            raise verify_error(report.summary(), "run 'moltir evidence verify' for every problem")
