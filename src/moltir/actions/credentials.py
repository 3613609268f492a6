"""``credentials.inventory``: every credential the install holds, written into the case.

``evidence/credentials/inventory.json`` (schema ``moltir.credentials/1``): each credential's id, kind,
provider, location, storage (plaintext / secretref / env / file), whether the provider can revoke it by
API, and its HMAC-SHA-256 fingerprint under the case's own random key ``evidence/credentials/hmac.key``
(0600, 32 bytes; ``moltir credentials --case`` fingerprints under the same key). Never a value.

Run before ``evidence.snapshot``, both files are covered by the seal (``evidence/`` outside the
snapshot's own folders is hashed in place). Idempotent: a case that has the inventory is "already".
"""

from __future__ import annotations

import json
import secrets

from moltir.actions.base import Action, Change, Plan, StepContext, StepResult
from moltir.openclaw import credentials as creds


class Inventory(Action):
    name = "credentials.inventory"
    description = "List every credential the install holds (fingerprints only) into the case."

    def plan(self, ctx: StepContext) -> Plan:
        target = ctx.case.dir / creds.CASE_INVENTORY
        if target.is_file():
            return Plan(f"credential inventory already in {target}", already_done=True)
        found = creds.inventory(ctx.install)
        return Plan(f"list {len(found)} credential(s) into the case",
                    (Change("file", str(target), before="absent",
                            after=f"{len(found)} credentials, fingerprints under the case's key"),))

    def apply(self, ctx: StepContext) -> StepResult:
        target = ctx.case.dir / creds.CASE_INVENTORY
        if target.is_file():
            return StepResult("already", f"credential inventory already in {target}")
        key_path = ctx.case.dir / creds.CASE_KEY
        if not key_path.is_file():
            ctx.case.write_file(creds.CASE_KEY, secrets.token_bytes(32))
        key = key_path.read_bytes()
        notes: list[str] = []
        found = creds.inventory(ctx.install, notes)
        body = {"schema": creds.SCHEMA, "install": str(ctx.install.state_dir), "notes": notes,
                "fingerprint": "hmac-sha256 under evidence/credentials/hmac.key, first 16 hex digits",
                "credentials": creds.records(found, key)}
        ctx.case.write_file(creds.CASE_INVENTORY,
                            (json.dumps(body, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        ctx.event("credentials.inventoried", count=len(found), file=creds.CASE_INVENTORY)
        kinds = sorted({c.provider for c in found})
        return StepResult("done", f"{len(found)} credential(s) listed in {target} ({', '.join(kinds) or 'none'})",
                          {"count": len(found), "file": creds.CASE_INVENTORY}, tuple(notes))
