from __future__ import annotations

from pathlib import Path

import pytest

from moltir.engine import runbook
from moltir.errors import MoltirError


@pytest.fixture(autouse=True)
def _test_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOLTIR_ENABLE_TEST_ACTIONS", "1")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rb.json5"
    path.write_text(text)
    return path


GOOD = """// a runbook
{
  name: "t",
  steps: [
    { id: "a", action: "test.sleep", with: { seconds: 0 } },
    { id: "b", action: "test.touch", with: { path: "/tmp/x" }, on_failure: "continue", timeout_s: 3 },
  ],
}
"""


def test_valid_runbook_loads_with_defaults_merged(tmp_path: Path) -> None:
    rb = runbook.load(_write(tmp_path, GOOD))
    assert [s.id for s in rb.steps] == ["a", "b"]
    assert rb.steps[0].params == {"seconds": 0, "marker": "", "until": "", "waiting": False}
    assert rb.steps[1].on_failure == "continue" and rb.steps[1].timeout_s == 3.0


def test_unknown_action_names_its_line(tmp_path: Path) -> None:
    text = """{
  name: "broken",
  description: "line 7 has a typo",
  steps: [
    { id: "one", action: "test.sleep" },
    // the next step is broken
    { id: "two", action: "gatway.stop" },
  ],
}
"""
    with pytest.raises(MoltirError) as err:
        runbook.load(_write(tmp_path, text))
    assert err.value.exit_code == 2
    assert f"{tmp_path / 'rb.json5'}:7:" in err.value.message
    assert "unknown action 'gatway.stop'" in err.value.message


@pytest.mark.parametrize(("snippet", "expected"), [
    ('{ id: "a", action: "test.sleep" }, { id: "a", action: "test.touch" }', "duplicate step id 'a'"),
    ('{ id: "a", action: "test.sleep", with: { seconds: "x" } }', "parameter 'seconds' must be int/float"),
    ('{ id: "a", action: "test.sleep", with: { sconds: 1 } }', "has no parameter 'sconds'"),
    ('{ id: "a", action: "test.sleep", on_failure: "retry" }', "on_failure must be"),
    ('{ id: "a", action: "test.sleep", timeout_s: -1 }', "timeout_s must be a positive number"),
    ('{ id: "a", action: "test.sleep", wth: {} }', "unknown key 'wth'"),
    ('{ action: "test.sleep" }', "'id' must be a non-empty string"),
])
def test_bad_steps_are_named(tmp_path: Path, snippet: str, expected: str) -> None:
    with pytest.raises(MoltirError) as err:
        runbook.load(_write(tmp_path, f'{{\n  name: "x",\n  steps: [\n    {snippet},\n  ],\n}}\n'))
    assert expected in err.value.message and err.value.exit_code == 2
    assert ":4:" in err.value.message


def test_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(MoltirError) as err:
        runbook.load(_write(tmp_path, '{\n  name: "x",\n  steps: [ { id: "a" action: "t" } ],\n}\n'))
    assert err.value.exit_code == 2 and "3" in err.value.message


def test_shipped_runbooks_validate() -> None:
    names = runbook.shipped_names()
    assert "contain" in names
    for name in names:
        runbook.load(runbook.resolve(name))


def test_contain_runbook_is_in_the_documented_order() -> None:
    rb = runbook.load(runbook.resolve("contain"))
    assert [s.action for s in rb.steps] == ["gateway.stop", "dm_policy.set", "token.rotate",
                                            "credentials.inventory", "evidence.snapshot", "audit.run"]


def test_syntax_error_in_a_runbook_says_runbook_not_config(tmp_path: Path) -> None:
    with pytest.raises(MoltirError) as err:
        runbook.load(_write(tmp_path, '{ name: "x", name: "y", steps: [] }'))
    assert err.value.exit_code == 2
    assert err.value.message.startswith(f"runbook {tmp_path / 'rb.json5'}:1:")
    assert "fix the runbook" in err.value.one_line() and "moltir changed nothing" not in err.value.one_line()
