"""Action registry: runbook ``action`` name -> ``module:Class``, imported lazily.

Lazy import keeps ``moltir --help`` fast: psutil, keyring and friends load only when a
runbook actually uses the action.
"""

from __future__ import annotations

import importlib
import os

from moltir.actions.base import Action

REGISTRY: dict[str, str] = {
    # name                 module:Class               (one module per action kind)
    "gateway.stop": "moltir.actions.gateway:GatewayStop",
    "gateway.start": "moltir.actions.gateway:GatewayStart",
    "dm_policy.set": "moltir.actions.dm_policy:SetDmPolicy",
    "dm_policy.restore": "moltir.actions.dm_policy:RestoreDmPolicy",
    "evidence.snapshot": "moltir.actions.evidence:Snapshot",
    "token.rotate": "moltir.actions.token:Rotate",
    "token.verify": "moltir.actions.token:Verify",
    "audit.run": "moltir.actions.audit:RunAudit",
    "harden.config": "moltir.actions.harden:HardenConfig",
    "harden.permissions": "moltir.actions.harden:HardenPermissions",
    "harden.verify": "moltir.actions.harden:HardenVerify",
    "harden.undo": "moltir.actions.harden:HardenUndo",
    "harden.exec_approvals": "moltir.actions.harden:HardenExecApprovals",
    "credentials.inventory": "moltir.actions.credentials:Inventory",
    "credential.rotate": "moltir.actions.credential_rotate:RotateCredential",
    "pause.config": "moltir.actions.pause:PauseConfig",
    "pause.restore": "moltir.actions.pause:PauseRestore",
}

# Actions that exist only for moltir's own tests (crash/resume drills). Never in a shipped runbook.
TEST_REGISTRY: dict[str, str] = {
    "test.sleep": "moltir.actions.testing:Sleep",
    "test.touch": "moltir.actions.testing:Touch",
    "test.watch": "moltir.actions.testing:Watch",
}


def available() -> dict[str, str]:
    names = dict(REGISTRY)
    if os.environ.get("MOLTIR_ENABLE_TEST_ACTIONS") == "1":
        names.update(TEST_REGISTRY)
    return names


def load(name: str) -> type[Action]:
    target = available()[name]
    module_name, _, class_name = target.partition(":")
    cls: type[Action] = getattr(importlib.import_module(module_name), class_name)
    return cls
