"""moltir harden on small real files (no gateway): each setting's edit, its undo byte for byte, the
modes, the refusals, the audit mapping, the CLI's bad input."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import json5
import pytest

from moltir.actions.base import Action, RunOptions, StepContext, StepResult
from moltir.actions.harden import HardenConfig, HardenPermissions, HardenUndo
from moltir.actions.harden.audit_check import targeted
from moltir.engine.case import Case
from moltir.engine.journal import Journal
from moltir.errors import EXIT_VERIFY, MoltirError
from moltir.openclaw import Install, discover
from moltir.openclaw import capabilities as capmod
from moltir.openclaw.audit_output import Finding

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.unit.releasefix import CURRENT, EARLY, pin  # noqa: E402

WEAK = """// a weak config
{
  gateway: {
    mode: "local",
    bind: "lan",  // reachable from the LAN
    controlUi: { allowInsecureAuth: true },
    auth: { mode: "token", token: "tok-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
  },
  channels: {
    telegram: {
      botToken: "123:abc",
      dmPolicy: "open",   // anyone
      allowFrom: ["*", "42"],
      groupPolicy: "open",
      groups: { "*": { requireMention: false } },
      accounts: { ops: { dmPolicy: "allowlist", allowFrom: ["7"] }, pub: { dmPolicy: "open", allowFrom: ["*"] } },
    },
  },
  tools: { deny: ["canvas"] },
}
"""


class Env:
    def __init__(self, tmp_path: Path, text: str = WEAK, release: str = EARLY) -> None:
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.config = self.state / "openclaw.json"
        self.config.write_text(text, encoding="utf-8")
        self.config.chmod(0o600)
        self.original = self.config.read_bytes()
        install = discover(env={"HOME": str(tmp_path), "OPENCLAW_STATE_DIR": str(self.state),
                                "OPENCLAW_CONFIG_PATH": str(self.config), "PATH": "/nonexistent"})
        self.install: Install = pin(install, release)
        self.case = Case.create(tmp_path / "case", kind="harden", install_info={}, reason="t")

    def ctx(self, action: Action, *, dry: bool = False, force: bool = False, allow_from: tuple[str, ...] = (),
            deny_tools: tuple[str, ...] = (), **params: Any) -> StepContext:
        merged = {k: p.default for k, p in action.params.items()}
        merged.update(params)
        case = dataclasses.replace(self.case, readonly=True) if dry else self.case
        return StepContext(self.install, case, Journal(None) if dry else Journal(self.case.journal_path), merged,
                           "step", "harden", None, RunOptions(dry_run=dry, force=force, allow_from=allow_from,
                                                              deny_tools=deny_tools), {})

    def run(self, action: Action, **kw: Any) -> StepResult:
        result = action.apply(self.ctx(action, **kw))
        action.verify(self.ctx(action, **kw), result)
        return result

    def data(self) -> dict[str, Any]:
        out = json5.loads(self.config.read_text(encoding="utf-8"))
        assert isinstance(out, dict)
        return out

    def undo(self, **kw: Any) -> StepResult:
        return self.run(HardenUndo(), **kw)


def test_dm_open_becomes_pairing_without_the_wildcard_and_undo_is_byte_exact(tmp_path: Path) -> None:
    env = Env(tmp_path)
    plan = HardenConfig().plan(env.ctx(HardenConfig(), dry=True, setting="dm"))
    assert "-      dmPolicy: \"open\",   // anyone" in plan.diff and env.config.read_bytes() == env.original
    res = env.run(HardenConfig(), setting="dm")
    tg = env.data()["channels"]["telegram"]
    assert tg["dmPolicy"] == "pairing" and tg["allowFrom"] == ["42"]
    assert tg["accounts"]["pub"]["dmPolicy"] == "pairing" and "allowFrom" not in tg["accounts"]["pub"]
    assert tg["accounts"]["ops"] == {"dmPolicy": "allowlist", "allowFrom": ["7"]}  # not open: untouched
    assert "// anyone" in env.config.read_text()
    assert set(res.details["changed"]) == {"channels.telegram.dmPolicy", "channels.telegram.allowFrom",
                                           "channels.telegram.accounts.pub.dmPolicy",
                                           "channels.telegram.accounts.pub.allowFrom"}
    again = HardenConfig().plan(env.ctx(HardenConfig(), dry=True, setting="dm"))
    assert again.already_done and again.diff == ""
    env.undo()
    assert env.config.read_bytes() == env.original


def test_dm_allow_from_makes_an_allowlist_of_those_ids(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    env.run(HardenConfig(), setting="dm", allow_from=("1001", "42"))
    tg = env.data()["channels"]["telegram"]
    assert tg["dmPolicy"] == "allowlist" and tg["allowFrom"] == ["42", "1001"]
    assert tg["accounts"]["pub"] == {"dmPolicy": "allowlist", "allowFrom": ["1001", "42"]}


def test_nested_dm_policy_of_the_old_release(tmp_path: Path) -> None:
    text = '{ gateway: { mode: "local" }, channels: { discord: { token: "x", dm: { policy: "open", ' \
           'allowFrom: ["*"] } } } }\n'
    env = Env(tmp_path, text, release=EARLY)
    env.run(HardenConfig(), setting="dm")
    assert env.data()["channels"]["discord"]["dm"] == {"policy": "pairing"}
    env.undo()
    assert env.config.read_bytes() == env.original


def test_groups_open_become_allowlist_and_mention_required(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(HardenConfig(), setting="groups")
    tg = env.data()["channels"]["telegram"]
    assert tg["groupPolicy"] == "allowlist" and tg["groups"]["*"]["requireMention"] is True
    assert tg["dmPolicy"] == "open"  # another step's business
    env.undo()
    assert env.config.read_bytes() == env.original


def test_bind_goes_to_loopback(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(HardenConfig(), setting="bind")
    assert env.data()["gateway"]["bind"] == "loopback"
    assert "// reachable from the LAN" in env.config.read_text()


@pytest.mark.parametrize("extra", ['tailscale: { mode: "serve" },', 'tailscale: { mode: "funnel" },',
                                   'remote: { url: "ws://192.168.1.5:18789" },'])
def test_bind_is_refused_when_clients_need_it_unless_forced(tmp_path: Path, extra: str) -> None:
    env = Env(tmp_path, WEAK.replace('mode: "local",', f'mode: "local", {extra}'))
    before = env.config.read_bytes()
    plan = HardenConfig().plan(env.ctx(HardenConfig(), dry=True, setting="bind"))
    assert plan.warnings and "--force" in plan.warnings[0] and plan.diff == ""
    res = env.run(HardenConfig(), setting="bind")
    assert res.status == "skipped" and "stays 'lan'" in res.summary
    assert env.config.read_bytes() == before
    env.run(HardenConfig(), setting="bind", force=True)
    assert env.data()["gateway"]["bind"] == "loopback"


@pytest.mark.parametrize("extra", ['tailscale: { mode: "off" },', 'remote: { url: "ws://127.0.0.1:18789" },',
                                   'remote: { url: "ws://gw.lan:18789", transport: "ssh" },'])
def test_bind_goes_to_loopback_when_no_client_needs_more(tmp_path: Path, extra: str) -> None:
    env = Env(tmp_path, WEAK.replace('mode: "local",', f'mode: "local", {extra}'))
    assert env.run(HardenConfig(), setting="bind").status == "done"
    assert env.data()["gateway"]["bind"] == "loopback"


def test_missing_or_loopback_bind_is_left_alone(tmp_path: Path) -> None:
    env = Env(tmp_path, WEAK.replace('bind: "lan",  // reachable from the LAN\n', ""))
    assert env.run(HardenConfig(), setting="bind").status == "already"
    assert env.config.read_bytes() == env.original


def test_control_ui_insecure_auth_off_where_the_key_exists(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    env.run(HardenConfig(), setting="control_ui")
    assert env.data()["gateway"]["controlUi"] == {"allowInsecureAuth": False}


def test_control_ui_key_removed_where_the_release_retired_it(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    env.run(HardenConfig(), setting="control_ui")
    assert "allowInsecureAuth" not in env.data()["gateway"].get("controlUi", {})
    env.undo()
    assert env.config.read_bytes() == env.original


def test_capability_row_for_the_insecure_auth_key() -> None:
    def caps(v: str | None) -> Any:
        return capmod.for_install("openclaw", v, "t", package_root=None, state_dir=None)

    assert caps("2026.1.29").value("control_ui_insecure_auth") is True
    assert caps("2026.7.35").value("control_ui_insecure_auth") is True
    assert caps("2026.8.1").value("control_ui_insecure_auth") is False   # npm pack openclaw@2026.8.1: retired
    assert caps("2026.9.6").value("control_ui_insecure_auth") is False


def test_tools_deny_adds_the_missing_names_and_keeps_the_others(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(HardenConfig(), setting="tools")
    assert env.data()["tools"]["deny"] == ["canvas", "exec", "browser", "gateway"]
    env.run(HardenConfig(), setting="tools", deny_tools=("nodes",))
    assert env.data()["tools"]["deny"] == ["canvas", "exec", "browser", "gateway", "nodes"]
    env.undo()
    assert env.config.read_bytes() == env.original


def test_permissions_tightened_and_put_back(tmp_path: Path) -> None:
    env = Env(tmp_path)
    creds = env.state / "credentials"
    creds.mkdir()
    (creds / "telegram-allowFrom.json").write_text("[]")
    (creds / "telegram-allowFrom.json").chmod(0o644)
    creds.chmod(0o755)
    env.state.chmod(0o755)
    env.config.chmod(0o644)
    paths = (env.state, env.config, creds, creds / "telegram-allowFrom.json")
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    plan = HardenPermissions().plan(env.ctx(HardenPermissions(), dry=True))
    assert {c.target for c in plan.changes} == {str(p) for p in before}
    assert {stat.S_IMODE(p.stat().st_mode) for p in before} == {0o755, 0o644}  # the plan changed nothing
    env.run(HardenPermissions())
    after = {p: stat.S_IMODE(p.stat().st_mode) for p in before}
    assert after == {env.state: 0o700, env.config: 0o600, creds: 0o700, creds / "telegram-allowFrom.json": 0o600}
    env.undo()
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in before} == before


def test_included_config_files_are_made_private_too(tmp_path: Path) -> None:
    env = Env(tmp_path, WEAK.replace('  tools: { deny: ["canvas"] },', '  tools: { $include: "./tools.json5" },'))
    inc = env.state / "tools.json5"
    inc.write_text('{ deny: ["canvas"] }\n')
    inc.chmod(0o644)
    env.run(HardenPermissions())
    assert stat.S_IMODE(inc.stat().st_mode) == 0o600
    env.run(HardenConfig(), setting="tools")
    assert json5.loads(inc.read_text())["deny"] == ["canvas", "exec", "browser", "gateway"]
    env.undo()
    assert inc.read_text() == '{ deny: ["canvas"] }\n' and stat.S_IMODE(inc.stat().st_mode) == 0o644
    assert env.config.read_bytes() == env.original


def test_all_steps_then_undo_bytes_and_modes_exact(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.state.chmod(0o755)
    for setting in ("dm", "groups", "bind", "control_ui", "tools"):
        env.run(HardenConfig(), setting=setting)
    env.run(HardenPermissions())
    assert env.config.read_bytes() != env.original
    assert (env.case.dir / "preimage" / "openclaw.json").read_bytes() == env.original
    env.undo()
    assert env.config.read_bytes() == env.original
    assert stat.S_IMODE(env.state.stat().st_mode) == 0o755
    assert env.undo().status == "already"


def test_undo_leaves_a_file_edited_since_unless_forced(tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.run(HardenConfig(), setting="bind")
    edited = env.config.read_text().replace('bind: "loopback"', 'bind: "tailnet"')
    env.config.write_text(edited)
    res = env.undo()
    assert res.status == "skipped" and "edited after 'moltir harden'" in res.warnings[0]
    assert env.config.read_text() == edited
    env.undo(force=True)
    assert env.config.read_bytes() == env.original


def test_verify_fails_when_the_config_was_rewritten(tmp_path: Path) -> None:
    env = Env(tmp_path)
    result = HardenConfig().apply(env.ctx(HardenConfig(), setting="bind"))
    env.config.write_text(env.config.read_text().replace('bind: "loopback"', 'bind: "lan"'))
    with pytest.raises(MoltirError) as err:
        HardenConfig().verify(env.ctx(HardenConfig(), setting="bind"), result)
    assert err.value.exit_code == EXIT_VERIFY and "gateway.bind" in err.value.message


def _f(check_id: str, detail: str = "") -> Finding:
    return Finding(check_id=check_id, severity="critical", title="t", detail=detail)


def test_audit_findings_map_to_the_steps_that_target_them() -> None:
    findings = [_f("channels.telegram.dm.open"), _f("fs.state_dir.perms_readable"),
                _f("security.exposure.open_groups_with_elevated", 'Found groupPolicy="open" at: - channels.x'),
                _f("gateway.control_ui.insecure_auth"), _f("gateway.auth_no_rate_limit"),
                _f("summary.attack_surface")]
    got = targeted(["dm", "groups", "permissions", "bind", "control_ui", "tools"], findings)
    assert got == {"dm": ["channels.telegram.dm.open"], "groups": ["security.exposure.open_groups_with_elevated"],
                   "permissions": ["fs.state_dir.perms_readable"], "bind": ["gateway.auth_no_rate_limit"],
                   "control_ui": ["gateway.control_ui.insecure_auth"]}
    assert targeted(["tools"], findings) == {}
    dm_exposure = _f("security.exposure.open_groups_with_runtime_or_fs", "- channels.telegram.dmPolicy")
    assert targeted(["dm", "groups"], [dm_exposure]) == {"dm": [dm_exposure.check_id]}


def _moltir(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "st"
    state.mkdir(exist_ok=True)
    (state / "openclaw.json").write_text(WEAK)
    env = {"HOME": str(tmp_path / "home"), "OPENCLAW_STATE_DIR": str(state), "PATH": "/usr/bin:/bin",
           "MOLTIR_HOME": str(tmp_path / "mh"), "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


@pytest.mark.parametrize(("args", "code", "says"), [
    (["harden", "--allow-from", "*", "--yes"], 2, "'*' would let anyone DM the bot again"),
    (["harden", "some-case"], 2, "a CASE goes with --undo"),
    (["harden", "--undo", "--allow-from", "1"], 2, "do not go with --undo"),
    (["harden", "--undo", "--yes"], 0, "nothing to undo: moltir has no harden case"),
])
def test_cli_refusals_change_nothing(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    got = _moltir(tmp_path, *args)
    assert got.returncode == code, got.stdout + got.stderr
    assert says in got.stdout + got.stderr and "Traceback" not in got.stderr
    assert (tmp_path / "st" / "openclaw.json").read_text() == WEAK


def test_cli_json_dry_run_changes_nothing(tmp_path: Path) -> None:
    got = _moltir(tmp_path, "harden", "--dry-run", "--json")
    doc = json.loads(got.stdout)
    # no openclaw binary here: the plan is shown, and exits 3 as the run would stop at the audit
    assert doc["schema"] == "moltir.result/1" and got.returncode == doc["exit_code"] == 3, got.stderr
    assert "would stop at step 'verify-audit': the openclaw binary was not found" in got.stderr
    steps = [p["id"] for p in doc["data"]["plan"]]
    assert steps[:2] == ["dm-access", "groups"] and steps[-1] == "verify-audit"
    assert (tmp_path / "st" / "openclaw.json").read_text() == WEAK


def test_a_harden_case_is_never_the_incident_case(tmp_path: Path) -> None:
    from moltir.engine.case import latest_case_dir, remember_latest

    index = tmp_path / "installs"
    incident, hardened = tmp_path / "c1", tmp_path / "c2"
    for folder, kind in ((incident, "contain"), (hardened, "harden")):
        Case.create(folder, kind=kind, install_info={}, reason="t")
        remember_latest(index, "k", folder, tmp_path / "state", kind=kind)
    assert latest_case_dir(index, "k") == incident.absolute()
    assert latest_case_dir(index, "k", kind="harden") == hardened.absolute()
