"""``contain --level pause`` on small real files (no gateway): what pause.config writes, that
pause.restore puts the config bytes back, a case that was not paused, the restore preview, the CLI's
bad input. The gateway parts (restart on the new token, no agent turn) are tests/integration/test_pause_real.py."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import json5
import pytest

from moltir.actions.base import Action, RunOptions, StepContext, StepResult
from moltir.actions.pause import PauseConfig, PauseRestore, pause_edits
from moltir.commands.restore_preview import describe_restore
from moltir.engine import runbook
from moltir.engine.case import Case
from moltir.engine.journal import Journal
from moltir.errors import EXIT_VERIFY, MoltirError
from moltir.openclaw import Install, discover

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.unit.releasefix import CURRENT, EARLY, pin  # noqa: E402

CONFIG = """// a config with tools and cron
{
  gateway: { mode: "local", bind: "loopback" },
  tools: {
    deny: ["canvas"],  // kept
    elevated: { enabled: true, allowFrom: { telegram: ["7"] } },
  },
}
"""


class Env:
    def __init__(self, tmp_path: Path, text: str = CONFIG, release: str = EARLY) -> None:
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.config = self.state / "openclaw.json"
        self.config.write_text(text, encoding="utf-8")
        self.original = self.config.read_bytes()
        install = discover(env={"HOME": str(tmp_path), "OPENCLAW_STATE_DIR": str(self.state),
                                "OPENCLAW_CONFIG_PATH": str(self.config), "PATH": "/nonexistent"})
        self.install: Install = pin(install, release)
        self.case = Case.create(tmp_path / "case", kind="contain", install_info={}, reason="t")

    def ctx(self, action: Action, *, dry: bool = False, force: bool = False, **params: Any) -> StepContext:
        merged = {k: p.default for k, p in action.params.items()}
        merged.update(params)
        case = dataclasses.replace(self.case, readonly=True) if dry else self.case
        return StepContext(self.install, case, Journal(None) if dry else Journal(self.case.journal_path), merged,
                           "step", "pause", None, RunOptions(dry_run=dry, force=force), {})

    def run(self, action: Action, **kw: Any) -> StepResult:
        result = action.apply(self.ctx(action, **kw))
        action.verify(self.ctx(action, **kw), result)
        return result

    def data(self) -> Any:
        return json5.loads(self.config.read_text(encoding="utf-8"))


def test_pause_edits_are_pure_and_minimal() -> None:
    assert pause_edits({}) == {("tools", "deny"): ["exec", "process"], ("tools", "elevated", "enabled"): False,
                               ("cron", "enabled"): False}
    paused = {"tools": {"deny": ["EXEC", "process", "x"], "elevated": {"enabled": False}}, "cron": {"enabled": False}}
    assert pause_edits(paused) == {}  # tool names match case-insensitively, like OpenClaw's policy
    assert pause_edits({"tools": {"deny": ["exec"]}})[("tools", "deny")] == ["exec", "process"]


@pytest.mark.parametrize("release", [EARLY, CURRENT])
def test_pause_then_restore_puts_the_bytes_back(tmp_path: Path, release: str) -> None:
    env = Env(tmp_path, release=release)
    dry = PauseConfig().plan(env.ctx(PauseConfig(), dry=True))
    assert {c.target for c in dry.changes} == {"tools.deny", "tools.elevated.enabled", "cron.enabled"}
    assert '// kept' in dry.diff and env.config.read_bytes() == env.original  # the plan changed nothing
    result = env.run(PauseConfig())
    assert result.status == "done"
    data = env.data()
    assert data["tools"]["deny"] == ["canvas", "exec", "process"]
    assert data["tools"]["elevated"] == {"enabled": False, "allowFrom": {"telegram": ["7"]}}
    assert data["cron"] == {"enabled": False}
    assert "// a config with tools and cron" in env.config.read_text()  # comments kept
    assert env.run(PauseConfig()).status == "already"
    record = env.case.restore_section("pause")
    assert record is not None and {tuple(e["path"]) for e in record["paths"]} == {
        ("tools", "deny"), ("tools", "elevated", "enabled"), ("cron", "enabled")}
    back = env.run(PauseRestore())  # no gateway runs: nothing to restart
    assert back.status == "done" and "restarted" not in back.details
    assert env.config.read_bytes() == env.original


def test_pause_verify_fails_when_the_config_is_rewritten(tmp_path: Path) -> None:
    env = Env(tmp_path)
    ctx = env.ctx(PauseConfig())
    result = PauseConfig().apply(ctx)
    env.config.write_text(CONFIG, encoding="utf-8")  # someone reopened it
    with pytest.raises(MoltirError) as err:
        PauseConfig().verify(ctx, result)
    assert err.value.exit_code == EXIT_VERIFY and "not paused at tools.deny" in err.value.message
    assert PauseConfig().still_holds(ctx) is not None


def test_restore_of_an_unpaused_case_changes_nothing(tmp_path: Path) -> None:
    env = Env(tmp_path)
    assert env.run(PauseRestore()).status == "skipped"
    assert PauseRestore().plan(env.ctx(PauseRestore(), dry=True)).already_done
    assert env.config.read_bytes() == env.original


def test_restore_leaves_a_setting_edited_during_the_incident(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(PauseConfig())
    env.config.write_text(env.config.read_text().replace("enabled: false }", "enabled: true }", 1))
    result = env.run(PauseRestore())
    assert result.warnings and "left as it is" in result.warnings[0]


def test_restore_preview_names_the_paused_settings(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(PauseConfig())
    lines = describe_restore(env.case, runbook.load(runbook.resolve("restore")))
    assert any("paused settings: tools.deny, tools.elevated.enabled, cron.enabled back" in ln for ln in lines)


def test_pause_runbook_ships_and_contain_rejects_an_unknown_level(tmp_path: Path) -> None:
    rb = runbook.load(runbook.resolve("pause"))
    assert [s.action for s in rb.steps] == ["gateway.stop", "dm_policy.set", "pause.config", "token.rotate",
                                          "gateway.start", "token.verify"]
    assert "pause.restore" in [s.action for s in runbook.load(runbook.resolve("restore")).steps]
    proc = subprocess.run([sys.executable, "-m", "moltir", "contain", "--level", "nap", "--yes"],
                          capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'nap' is not one of 'full', 'pause'" in proc.stderr


def test_restore_hardened_preview_plans_harden_on_the_current_config(tmp_path: Path) -> None:
    from moltir.commands import run as runner

    env = Env(tmp_path, text=CONFIG.replace('bind: "loopback"', 'bind: "lan"'))
    harden = runner.Request("harden", runbook.load(runbook.resolve("harden")), RunOptions(), new_case=True)
    lines = runner.harden_preview(env.install, harden)
    assert lines[0].startswith("then 'moltir harden' in a case of its own")
    assert any(ln.strip().startswith("bind") for ln in lines)
    assert any(ln.startswith("    +") and 'bind: "loopback"' in ln for ln in lines)  # harden's diff
    assert env.config.read_bytes() == env.original


def test_restore_hardened_refuses_all_profiles(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "moltir", "restore", "--hardened", "--all-profiles", "--yes"],
                          capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--hardened cannot be combined with --all-profiles" in proc.stderr
