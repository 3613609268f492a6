"""moltir.openclaw.services with recording stand-ins for systemctl / launchctl on PATH: exact commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fakemgr
import pytest

from moltir.openclaw import Install, discover, services

UID = os.getuid()
UNIT = "openclaw-gateway.service"
LABEL = "ai.openclaw.gateway"
PLIST = "/Users/u/Library/LaunchAgents/ai.openclaw.gateway.plist"


class Env:
    def __init__(self, tmp: Path, state: dict[str, Any], *, profile: str | None = None) -> None:
        self.state_file = tmp / "mgr-state.json"
        self.log = tmp / "mgr-calls.jsonl"
        extra = fakemgr.install(tmp / "bin", self.state_file, self.log, state)
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        env = {"HOME": str(home), "PATH": str(tmp / "bin"), **extra}
        if profile:
            env["OPENCLAW_PROFILE"] = profile
        self.install: Install = discover(env=env)
        self.manager = services.Manager(self.install)

    def mutating(self) -> list[list[str]]:
        return fakemgr.mutating(self.log)

    def state(self) -> dict[str, Any]:
        return fakemgr.read_state(self.state_file)


def unit(active: str = "active", file: str = "enabled", pid: int = 0, **kw: Any) -> dict[str, Any]:
    return {"active": active, "file": file, "pid": pid, **kw}


# ---- parsing ------------------------------------------------------------------------------------

def test_cgroup_unit_finds_user_units_and_system_units() -> None:
    user = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/openclaw-gateway.service\n"
    assert services.cgroup_unit(user) == ("openclaw-gateway.service", True)
    system = "0::/system.slice/openclaw.service\n"
    assert services.cgroup_unit(system) == ("openclaw.service", False)
    assert services.cgroup_unit("0::/user.slice/user-1000.slice/user@1000.service/init.scope\n") == (None, True)
    assert services.cgroup_unit("4:memory:/process_api/abc\n0::/\n") == (None, False)


def test_parse_launchctl_output() -> None:
    text = "gui/501/ai.openclaw.gateway = {\n\tactive count = 1\n\tpath = /x/a.plist\n\tstate = running\n\tpid = 77\n}"
    assert services.parse_launchctl_print(text) == ("running", 77, "/x/a.plist")
    dis = 'disabled services = {\n\t"ai.openclaw.gateway" => disabled\n\t"com.apple.x" => enabled\n}'
    assert services.parse_print_disabled(dis) == {"ai.openclaw.gateway": True, "com.apple.x": False}


# ---- systemd ------------------------------------------------------------------------------------

def test_detect_systemd_unit_with_exact_show_command(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit(pid=4100)}})
    found = services.detect(env.manager, gateway_pid=4100)
    assert [(i.manager, i.name, i.main_pid, i.unit_file_state, i.running) for i in found] == [
        ("systemd", UNIT, 4100, "enabled", True)]
    assert services.is_supervising(found[0], 4100)
    calls = fakemgr.calls(env.log)
    assert calls[0] == ["systemctl", "--user", "show", UNIT, "--no-pager",
                        "--property=Id,LoadState,ActiveState,SubState,UnitFileState,MainPID,FragmentPath,"
                        "Restart,NRestarts,User,Group,DropInPaths,PrivateTmp,InvocationID"]
    assert env.mutating() == []   # detection changes nothing


def test_detect_uses_profile_unit_and_the_gateway_env_marker(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {"openclaw-gateway-work.service": unit(), "custom.service": unit()}},
              profile="work")
    found = services.detect(env.manager, gateway_env={"OPENCLAW_SYSTEMD_UNIT": "custom"})
    assert [i.name for i in found] == ["custom.service", "openclaw-gateway-work.service"]


def test_no_user_manager_means_no_service(tmp_path: Path) -> None:
    env = Env(tmp_path, {"bus_down": True, "units": {UNIT: unit()}})
    assert services.detect(env.manager) == []
    ok, why = env.manager.systemd_reachable()
    assert not ok and "Failed to connect to bus" in why


def test_systemd_stop_clean_disables_masks_and_stops_without_blocking(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit()}})
    info = services.detect(env.manager)[0]
    res = services.stop(env.manager, info, timeout_s=5)
    assert env.mutating() == [
        ["systemctl", "--user", "disable", UNIT],
        ["systemctl", "--user", "mask", "--runtime", UNIT],
        ["systemctl", "--user", "stop", "--no-block", UNIT],
    ]
    assert res.stopped and not res.forced and res.disabled and res.masked and res.warnings == ()
    assert env.state()["units"][UNIT]["active"] == "inactive"


def test_systemd_stop_of_a_disabled_unit_does_not_disable(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit(file="disabled")}})
    res = services.stop(env.manager, services.detect(env.manager)[0], timeout_s=5)
    assert env.mutating() == [
        ["systemctl", "--user", "mask", "--runtime", UNIT],
        ["systemctl", "--user", "stop", "--no-block", UNIT],
    ]
    assert not res.disabled and res.masked


def test_systemd_hanging_drain_is_killed_through_the_manager_after_the_bound(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit(hang=True)}})
    res = services.stop(env.manager, services.detect(env.manager)[0], timeout_s=0.5, kill_wait_s=5)
    assert env.mutating() == [
        ["systemctl", "--user", "disable", UNIT],
        ["systemctl", "--user", "mask", "--runtime", UNIT],
        ["systemctl", "--user", "stop", "--no-block", UNIT],
        ["systemctl", "--user", "kill", "-s", "SIGKILL", UNIT],
    ]
    assert res.forced and res.stopped and res.final_state == "failed"


def test_systemd_mask_refused_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit(mask_fails=True)}})
    res = services.stop(env.manager, services.detect(env.manager)[0], timeout_s=5)
    assert res.stopped and res.disabled and not res.masked
    assert len(res.warnings) == 1 and "mask --runtime" in res.warnings[0] and "already exists" in res.warnings[0]


def test_systemd_start_undoes_exactly_what_stop_did(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit()}})
    stop = services.stop(env.manager, services.detect(env.manager)[0], timeout_s=5)
    before = len(env.mutating())
    results = services.start(env.manager, {"manager": "systemd", "name": UNIT, "masked": stop.masked,
                                           "disabled": stop.disabled})
    assert env.mutating()[before:] == [
        ["systemctl", "--user", "unmask", "--runtime", UNIT],
        ["systemctl", "--user", "enable", UNIT],
        ["systemctl", "--user", "start", "--no-block", UNIT],
    ]
    assert services.failed(results) == []
    st = env.state()["units"][UNIT]
    assert (st["active"], st["file"]) == ("active", "enabled")


def test_systemd_start_of_a_unit_we_did_not_disable_leaves_it_disabled(tmp_path: Path) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit(active="inactive", file="disabled")}})
    services.start(env.manager, {"manager": "systemd", "name": UNIT, "masked": False, "disabled": False})
    assert env.mutating() == [["systemctl", "--user", "start", "--no-block", UNIT]]
    assert env.state()["units"][UNIT]["file"] == "disabled"


# ---- launchd ------------------------------------------------------------------------------------

def agent(**kw: Any) -> dict[str, Any]:
    return {"loaded": True, "pid": 0, "plist": PLIST, "disabled": False, **kw}


def test_detect_launchd_agent(tmp_path: Path) -> None:
    env = Env(tmp_path, {"agents": {LABEL: agent(pid=4200)}})
    found = services.detect(env.manager, gateway_pid=4200)
    systemd_free = [i for i in found if i.manager == "launchd"]
    assert [(i.name, i.main_pid, i.path, i.domain, i.disabled) for i in systemd_free] == [
        (LABEL, 4200, PLIST, f"gui/{UID}", False)]
    assert ["launchctl", "print", f"gui/{UID}/{LABEL}"] in fakemgr.calls(env.log)


def test_launchd_stop_disables_and_boots_out(tmp_path: Path) -> None:
    env = Env(tmp_path, {"agents": {LABEL: agent(pid=4200)}})
    info = next(i for i in services.detect(env.manager) if i.manager == "launchd")
    res = services.stop(env.manager, info, timeout_s=5)
    assert env.mutating() == [
        ["launchctl", "disable", f"gui/{UID}/{LABEL}"],
        ["launchctl", "bootout", f"gui/{UID}/{LABEL}"],
    ]
    assert res.stopped and not res.forced and res.disabled


def test_launchd_hanging_bootout_is_bounded_and_killed(tmp_path: Path) -> None:
    env = Env(tmp_path, {"agents": {LABEL: agent(pid=4200, hang=True)}})
    info = next(i for i in services.detect(env.manager) if i.manager == "launchd")
    res = services.stop(env.manager, info, timeout_s=1.0, kill_wait_s=5)
    assert env.mutating() == [
        ["launchctl", "disable", f"gui/{UID}/{LABEL}"],
        ["launchctl", "bootout", f"gui/{UID}/{LABEL}"],
        ["launchctl", "kill", "SIGKILL", f"gui/{UID}/{LABEL}"],
    ]
    assert res.forced and res.stopped


def test_launchd_start_reenables_bootstraps_the_recorded_plist_and_kickstarts(tmp_path: Path) -> None:
    env = Env(tmp_path, {"agents": {LABEL: agent(loaded=False, disabled=True)}})
    results = services.start(env.manager, {"manager": "launchd", "name": LABEL, "disabled": True, "path": PLIST})
    assert env.mutating() == [
        ["launchctl", "enable", f"gui/{UID}/{LABEL}"],
        ["launchctl", "bootstrap", f"gui/{UID}", PLIST],
        ["launchctl", "kickstart", f"gui/{UID}/{LABEL}"],
    ]
    assert services.failed(results) == []
    a = env.state()["agents"][LABEL]
    assert a["loaded"] and not a["disabled"]


def test_commands_never_inherit_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env(tmp_path, {"units": {UNIT: unit()}})
    inst = discover(env={**env.install.env, "OPENCLAW_GATEWAY_TOKEN": "tok-should-not-pass"})
    mgr = services.Manager(inst)
    assert "OPENCLAW_GATEWAY_TOKEN" not in mgr.env
