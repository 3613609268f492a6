"""Recording stand-ins for ``systemctl`` and ``launchctl`` (the real managers are not available).

``install(bin_dir, state_file, log_file)`` writes both executables. Each call appends its argv
(one JSON list per line) to ``log_file`` and acts on a small JSON state: units/agents with
their active state, enabled state and main pid. ``stop``/``bootout`` send SIGTERM to the main
pid (when it is a real process) unless the unit is marked ``hang`` (a drain that never ends);
``kill -s SIGKILL`` / ``kill SIGKILL`` send SIGKILL. ``bus_down`` makes every ``systemctl --user``
call fail the way it does without a user manager.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STANDIN = r'''
import json, os, signal, sys, time
STATE = os.environ["FAKEMGR_STATE"]
LOG = os.environ["FAKEMGR_LOG"]
tool = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(LOG, "a") as fh:
    fh.write(json.dumps([tool, *args]) + "\n")
with open(STATE) as fh:
    st = json.load(fh)

def save():
    with open(STATE + ".tmp", "w") as fh:
        json.dump(st, fh)
    os.replace(STATE + ".tmp", STATE)

def signal_pid(pid, sig):
    if pid:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

def pid_alive(pid):
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False

if tool == "systemctl":
    if st.get("bus_down"):
        print("Failed to connect to bus: No medium found", file=sys.stderr)
        sys.exit(1)
    assert args[0] == "--user", args
    args = args[1:]
    verb = args[0]
    units = st.setdefault("units", {})
    rest = [a for a in args[1:] if not a.startswith("-")]
    unit = rest[-1] if rest else None
    u = units.get(unit) if unit else None
    if verb == "show":
        if unit is None:
            print("Version=252")
            sys.exit(0)
        if u is None:
            print(f"Id={unit}\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nMainPID=0")
            sys.exit(0)
        # a stopping unit finishes once its main process is gone
        if u["active"] == "deactivating" and not u.get("hang") and not pid_alive(u.get("pid")):
            u["active"], u["pid"] = "inactive", 0
            save()
        print(f"Id={unit}\nLoadState=loaded\nActiveState={u['active']}\nSubState=running\n"
              f"UnitFileState={u['file']}\nMainPID={u.get('pid') or 0}\n"
              f"FragmentPath=/home/u/.config/systemd/user/{unit}\nRestart=always\nNRestarts=0")
        sys.exit(0)
    if u is None:
        print(f"Failed to {verb} {unit}: Unit {unit} not found.", file=sys.stderr)
        sys.exit(5)
    if verb == "disable":
        u["file"] = "disabled"
    elif verb == "enable":
        u["file"] = "enabled"
    elif verb == "mask":
        if u.get("mask_fails"):
            print(f"Failed to mask unit: File /run/user/0/systemd/user/{unit} already exists.", file=sys.stderr)
            sys.exit(1)
        u["before_mask"] = u["file"]
        u["file"] = "masked-runtime"
    elif verb == "unmask":
        u["file"] = u.pop("before_mask", u["file"])
    elif verb == "stop":
        if u.get("hang"):
            u["active"] = "deactivating"
        else:
            signal_pid(u.get("pid"), signal.SIGTERM)
            u["active"] = "deactivating" if pid_alive(u.get("pid")) else "inactive"
            if u["active"] == "inactive":
                u["pid"] = 0
    elif verb == "kill":
        signal_pid(u.get("pid"), signal.SIGKILL)
        u["active"], u["pid"] = "failed", 0
    elif verb == "start":
        if u["file"].startswith("masked"):
            print(f"Failed to start {unit}: Unit {unit} is masked.", file=sys.stderr)
            sys.exit(1)
        u["active"] = "active"
        u["pid"] = st.get("start_pid", 4242)
    save()
    sys.exit(0)

if tool == "launchctl":
    agents = st.setdefault("agents", {})
    verb = args[0]
    if verb == "print-disabled":
        print(f"disabled services = {{")
        for label, a in agents.items():
            print(f'\t"{label}" => {"disabled" if a.get("disabled") else "enabled"}')
        print("}")
        sys.exit(0)
    target = args[-1]
    label = target.split("/")[-1] if verb != "bootstrap" else None
    a = agents.get(label) if label else None
    if verb == "print":
        if a is None or not a.get("loaded"):
            print(f"Could not find service \"{label}\" in domain for user gui: 0", file=sys.stderr)
            sys.exit(113)
        state = "running" if a.get("pid") else "not running"
        print(f"{target} = {{\n\tactive count = 1\n\tpath = {a['plist']}\n\tstate = {state}\n"
              f"\tprogram = /usr/local/bin/node\n" + (f"\tpid = {a['pid']}\n" if a.get("pid") else "") + "}")
        sys.exit(0)
    if verb == "bootstrap":
        plist = args[-1]
        for label, a in agents.items():
            if a["plist"] == plist:
                if a.get("loaded"):
                    print("Bootstrap failed: 5: Input/output error", file=sys.stderr)
                    sys.exit(5)
                a["loaded"] = True
                a["pid"] = st.get("start_pid", 4343)
        save()
        sys.exit(0)
    if a is None:
        print(f"Could not find service \"{label}\"", file=sys.stderr)
        sys.exit(113)
    if verb == "disable":
        a["disabled"] = True
    elif verb == "enable":
        a["disabled"] = False
    elif verb == "bootout":
        if a.get("hang"):
            save()
            time.sleep(600)   # blocks like a real bootout waiting on a drain; moltir's timeout ends it
        signal_pid(a.get("pid"), signal.SIGTERM)
        a["loaded"], a["pid"] = False, 0
    elif verb == "kill":
        signal_pid(a.get("pid"), signal.SIGKILL)
        a["loaded"], a["pid"] = False, 0
    elif verb == "kickstart":
        a["pid"] = a.get("pid") or st.get("start_pid", 4343)
    save()
    sys.exit(0)
sys.exit(64)
'''


def install(bin_dir: Path, state_file: Path, log_file: Path, state: dict[str, Any]) -> dict[str, str]:
    """Write the stand-ins and the initial state; return the env vars they need."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("systemctl", "launchctl"):
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable}\n" + STANDIN)
        path.chmod(0o755)
    state_file.write_text(json.dumps(state))
    log_file.write_text("")
    return {"FAKEMGR_STATE": str(state_file), "FAKEMGR_LOG": str(log_file)}


def calls(log_file: Path) -> list[list[str]]:
    return [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]


def mutating(log_file: Path) -> list[list[str]]:
    """The calls that change something (everything but show/cat/print/print-disabled)."""
    return [c for c in calls(log_file) if not ({"show", "cat", "print", "print-disabled"} & set(c[1:3]))]


def read_state(state_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(state_file.read_text())
    return data
