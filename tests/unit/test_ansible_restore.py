"""The Ansible ``moltir.openclaw.restore`` module passes ``accept_risk`` to ``moltir restore`` as one
``--accept-risk`` per id (and nothing when the list is empty)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"


class _FakeModule:
    params: dict[str, Any] = {}
    spec: dict[str, Any] = {}

    def __init__(self, argument_spec: dict[str, Any], **_kw: Any) -> None:
        type(self).spec = argument_spec
        defaults = {k: v.get("default") for k, v in argument_spec.items()}
        self.params = {**defaults, **type(self).params}


@pytest.mark.parametrize(("given", "argv"), [
    ({}, []),
    ({"accept_risk": ["channels.telegram.dm.open", "security.exposure.open_groups_with_elevated"]},
     ["--accept-risk", "channels.telegram.dm.open", "--accept-risk", "security.exposure.open_groups_with_elevated"]),
    ({"reopen_open": "pairing", "accept_risk": ["x.y"]}, ["--reopen-open", "pairing", "--accept-risk", "x.y"]),
])
def test_accept_risk_becomes_one_flag_per_id(monkeypatch: pytest.MonkeyPatch, given: dict[str, Any],
                                             argv: list[str]) -> None:
    pytest.importorskip("ansible.module_utils.basic")
    monkeypatch.syspath_prepend(str(ANSIBLE))
    for name in [m for m in sys.modules if m.startswith("ansible_collections")]:
        monkeypatch.delitem(sys.modules, name)
    mod = importlib.import_module("ansible_collections.moltir.openclaw.plugins.modules.restore")
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(_FakeModule, "params", given)
    monkeypatch.setattr(mod, "AnsibleModule", _FakeModule)
    monkeypatch.setattr(mod, "run_runbook", lambda module, command, extra_args=(), contained=None:
                        calls.append((command, list(extra_args))))
    mod.main()
    assert calls == [("restore", argv)]
    assert _FakeModule.spec["accept_risk"] == {"type": "list", "elements": "str", "default": []}
    assert "accept_risk:" in mod.DOCUMENTATION
