"""The schedule that runs rotation drills unattended: the ``--every`` expression, the files
(systemd user service + timer, LaunchAgent, or a crontab line) and installing, removing and
showing them (see :mod:`moltir.commands.drills`)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from moltir import paths
from moltir.commands.drill_history import read_history
from moltir.errors import env_error, usage_error
from moltir.fsutil import atomic_write, ensure_private_dir, os_error

if TYPE_CHECKING:
    from moltir.openclaw import Install

DAILY = ("17", "3", "*", "*", "*")
WEEKLY = ("17", "3", "*", "*", "1")
_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


# ---- schedule: the expression -----------------------------------------------------------------

def cron_fields(every: str) -> tuple[str, ...]:
    """``daily`` | ``weekly`` | a five-field cron expression, validated (exit 2 when bad)."""
    text = every.strip()
    if text == "daily":
        return DAILY
    if text == "weekly":
        return WEEKLY
    fields = tuple(text.split())
    if len(fields) != 5:
        raise usage_error(f"--every {every!r}: expected daily, weekly or a cron expression with 5 fields",
                          "for example --every '30 2 * * 0' (Sundays at 02:30)")
    for value, (lo, hi), name in zip(fields, _FIELD_RANGES, _FIELD_NAMES, strict=True):
        for part in value.split(","):
            m = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", part)
            if not m:
                raise usage_error(f"--every {every!r}: cannot read the {name} field {value!r}",
                                  "use numbers, '*', lists (1,15), ranges (1-5) and steps (*/15)")
            for num in re.findall(r"\d+", m.group(1)):
                if not lo <= int(num) <= hi:
                    raise usage_error(f"--every {every!r}: {name} {num} is outside {lo}-{hi}")
            if m.group(2) is not None and int(m.group(2)) == 0:
                raise usage_error(f"--every {every!r}: a step of 0 in the {name} field")
    return fields


def _systemd_part(value: str, dow: bool = False) -> str:
    parts = []
    for part in value.split(","):
        base, _, step = part.partition("/")
        if dow:
            if base == "*":
                return ""
            a, _, b = base.partition("-")
            parts.append(_DOW[int(a)] + (".." + _DOW[int(b)] if b else ""))
            continue
        base = ("*" if not step else "0") if base == "*" else base.replace("-", "..")
        parts.append(base + (f"/{step}" if step else ""))
    return ",".join(parts)


def on_calendar(fields: Sequence[str]) -> str:
    """systemd ``OnCalendar=`` for cron fields (``m h dom mon dow``)."""
    minute, hour, dom, month, dow = fields
    days = _systemd_part(dow, dow=True)
    m, h = _systemd_part(minute), _systemd_part(hour)
    m = m if m.startswith("*") or len(m) > 1 else m.zfill(2)
    h = h if h.startswith("*") or len(h) > 1 else h.zfill(2)
    date = f"*-{_systemd_part(month)}-{_systemd_part(dom)}"
    return f"{days + ' ' if days else ''}{date} {h}:{m}:00"


def launchd_intervals(fields: Sequence[str]) -> list[dict[str, int]]:
    """``StartCalendarInterval`` entries; launchd has no steps or ranges, so those are expanded."""
    keys = ("Minute", "Hour", "Day", "Month", "Weekday")
    expanded: list[list[int] | None] = []
    for value, (lo, hi) in zip(fields, _FIELD_RANGES, strict=True):
        if value == "*":
            expanded.append(None)
            continue
        nums: set[int] = set()
        for part in value.split(","):
            base, _, step = part.partition("/")
            a, b = (lo, hi) if base == "*" else (int(base.split("-")[0]), int(base.split("-")[-1]))
            nums.update(range(a, b + 1, int(step) if step else 1))
        expanded.append(sorted(nums))
    combos: list[dict[str, int]] = [{}]
    for key, values in zip(keys, expanded, strict=True):
        if values is None:
            continue
        if key == "Weekday":
            values = sorted({v % 7 for v in values})
        combos = [{**c, key: v} for c in combos for v in values]
    if len(combos) > 500:
        raise usage_error("the cron expression expands to more than 500 launchd entries",
                          "use a simpler schedule (for example daily or weekly)")
    return combos


# ---- schedule: the files ----------------------------------------------------------------------

def moltir_command() -> list[str]:
    """How the scheduler runs moltir: the console script next to this interpreter, else ``python -m moltir``."""
    script = Path(sys.executable).parent / "moltir"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("moltir")
    return [found] if found else [sys.executable, "-m", "moltir"]


def job_env(install: Install) -> dict[str, str]:
    """What the scheduled job needs from THIS environment, spelled out because a timer, cron or launchd
    starts it with almost none: ``MOLTIR_HOME`` (so the drill writes the history, cases, locks and the
    secret helper moltir uses here, not a second moltir home under the scheduler's defaults) and
    ``PATH`` (the openclaw launcher runs ``node`` through ``/usr/bin/env``)."""
    env = {"MOLTIR_HOME": str(paths.moltir_home(install.env))}
    if install.env.get("PATH"):
        env["PATH"] = install.env["PATH"]
    return env


def notify_path(install: Install) -> Path:
    """The scheduled drill's ``--notify`` URLs (0600; a URL may hold a key, so never in a unit's argv)."""
    return paths.drills_dir(install.env) / f"{install.key}.notify"


def store_notify(install: Install, urls: Sequence[str]) -> bool:
    """Keep ``urls`` for the scheduled drill (none: forget earlier ones). Returns whether a file is kept."""
    path = notify_path(install)
    if not urls:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return False
    ensure_private_dir(path.parent)
    atomic_write(path, "".join(f"{u}\n" for u in urls).encode("utf-8"), mode=0o600)
    return True


def drill_argv(install: Install, moltir: Sequence[str]) -> list[str]:
    argv = [*moltir, "drill", "--yes", "--state-dir", str(install.state_dir), "--config", str(install.config_path)]
    if install.profile:
        argv += ["--profile", install.profile]
    if install.binary is not None:
        argv += ["--openclaw-bin", str(install.binary)]
    if notify_path(install).is_file():
        argv += ["--notify", f"@{notify_path(install)}"]
    return argv


def _systemd_quote(arg: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@+-]+", arg):
        return arg.replace("%", "%%")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def unit_name(install: Install) -> str:
    return f"moltir-drill-{install.key}"


def launchd_label(install: Install) -> str:
    return f"ai.moltir.drill.{install.key}"


def _log_path(install: Install) -> Path:
    return paths.drills_dir(install.env) / f"{install.key}.log"


def systemd_units(install: Install, fields: Sequence[str], moltir: Sequence[str]) -> dict[str, str]:
    name = unit_name(install)
    exec_start = " ".join(_systemd_quote(a) for a in drill_argv(install, moltir))
    service = (
        "# Generated by 'moltir drill schedule install'; remove with 'moltir drill schedule remove'.\n"
        "[Unit]\n"
        f"Description=moltir token-rotation drill for {install.state_dir}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        + "".join(f"Environment={_systemd_quote(f'{k}={v}')}\n" for k, v in job_env(install).items())
        + f"ExecStart={exec_start}\n"
        "NoNewPrivileges=yes\n"
        "PrivateTmp=no\n"
    )
    timer = (
        "# Generated by 'moltir drill schedule install'; remove with 'moltir drill schedule remove'.\n"
        "[Unit]\n"
        f"Description=Run the moltir token-rotation drill ({install.state_dir})\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={on_calendar(fields)}\n"
        "Persistent=true\n"
        f"Unit={name}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def launchd_plist(install: Install, fields: Sequence[str], moltir: Sequence[str]) -> str:
    args = "\n".join(f"    <string>{escape(a)}</string>" for a in drill_argv(install, moltir))
    intervals = []
    for combo in launchd_intervals(fields):
        items = "".join(f"<key>{k}</key><integer>{v}</integer>" for k, v in combo.items())
        intervals.append(f"    <dict>{items}</dict>")
    log = escape(str(_log_path(install)))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n'
        "<dict>\n"
        "  <!-- Generated by 'moltir drill schedule install'; remove with 'moltir drill schedule remove'. -->\n"
        f"  <key>Label</key><string>{launchd_label(install)}</string>\n"
        "  <key>ProgramArguments</key>\n"
        "  <array>\n"
        f"{args}\n"
        "  </array>\n"
        "  <key>StartCalendarInterval</key>\n"
        "  <array>\n"
        + "\n".join(intervals) + "\n"
        "  </array>\n"
        "  <key>EnvironmentVariables</key>\n"
        "  <dict>\n"
        + "".join(f"    <key>{escape(k)}</key><string>{escape(v)}</string>\n" for k, v in job_env(install).items())
        + "  </dict>\n"
        "  <key>RunAtLoad</key><false/>\n"
        f"  <key>StandardOutPath</key><string>{log}</string>\n"
        f"  <key>StandardErrorPath</key><string>{log}</string>\n"
        "</dict>\n"
        "</plist>\n"
    )


def crontab_line(install: Install, fields: Sequence[str], moltir: Sequence[str], *,
                 platform: str | None = None) -> str:
    platform = platform or sys.platform
    env = "".join(f"{k}={shlex.quote(v)} " for k, v in job_env(install).items())
    if platform.startswith("linux"):
        env += f"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{os.getuid()}/bus "
    cmd = " ".join(shlex.quote(a) for a in drill_argv(install, moltir))
    log = shlex.quote(str(_log_path(install)))
    return f"{' '.join(fields)} {env}{cmd} >> {log} 2>&1"


@dataclass(frozen=True)
class Schedule:
    kind: str  # "systemd" | "launchd" | "cron"
    files: dict[str, str]  # path -> text (written, or that would be written)
    line: str = ""  # the crontab line (kind "cron")
    activated: bool = False
    commands: tuple[str, ...] = ()  # what moltir ran (or what to run by hand)
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": sorted(self.files), "line": self.line or None,
                "activated": self.activated, "commands": list(self.commands), "notes": list(self.notes)}


def _user_dir(install: Install, *parts: str) -> Path:
    return Path(install.env.get("HOME") or Path.home()).joinpath(*parts)


def systemd_dir(install: Install) -> Path:
    base = install.env.get("XDG_CONFIG_HOME") or str(_user_dir(install, ".config"))
    return Path(base) / "systemd" / "user"


def launch_agents_dir(install: Install) -> Path:
    return _user_dir(install, "Library", "LaunchAgents")


def _run(argv: list[str], env: Mapping[str, str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, env=dict(env))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, " ".join((proc.stderr or proc.stdout).split())[:200]


def systemd_user_reachable(env: Mapping[str, str]) -> tuple[bool, str]:
    """Can ``systemctl --user`` talk to a user manager from this environment (a login session)?"""
    if not shutil.which("systemctl", path=env.get("PATH")):
        return False, "systemctl not found"
    ok, out = _run(["systemctl", "--user", "show-environment"], env)
    return (True, "") if ok else (False, out or "systemctl --user failed")


def plan_schedule(install: Install, every: str, *, platform: str | None = None,
                  moltir: Sequence[str] | None = None) -> Schedule:
    """What ``schedule install`` would write (no side effects)."""
    fields = cron_fields(every)
    platform = platform or sys.platform
    moltir = list(moltir or moltir_command())
    if platform == "darwin":
        path = launch_agents_dir(install) / f"{launchd_label(install)}.plist"
        return Schedule("launchd", {str(path): launchd_plist(install, fields, moltir)})
    if platform.startswith("linux"):
        folder = systemd_dir(install)
        return Schedule("systemd", {str(folder / n): t for n, t in systemd_units(install, fields, moltir).items()})
    return Schedule("cron", {}, crontab_line(install, fields, moltir, platform=platform))


def install_schedule(install: Install, every: str, *, platform: str | None = None,
                     moltir: Sequence[str] | None = None, activate: bool = True) -> Schedule:
    """Write the timer/service (Linux) or LaunchAgent (macOS) and, with ``activate``, enable it."""
    plan = plan_schedule(install, every, platform=platform, moltir=moltir)
    if plan.kind == "cron":
        return Schedule("cron", {}, plan.line, notes=("no systemd or launchd here: add this line with "
                                                      "'crontab -e'",))
    if activate and plan.kind == "systemd":
        reachable, why = systemd_user_reachable(install.env)
        if not reachable:
            raise env_error(f"no systemd user manager is reachable from here ({why}), so the drill timer could "
                            "not be enabled; nothing was written",
                            "run this in your login session (or after 'loginctl enable-linger'), or schedule it "
                            "with cron: 'moltir drill schedule install --print' gives the line for 'crontab -e' "
                            "(--no-activate writes the unit files only)")
    ensure_private_dir(paths.drills_dir(install.env))
    for path, text in plan.files.items():
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, f"creating {p.parent}") from None
        atomic_write(p, text.encode("utf-8"), mode=0o644)
    commands: list[str] = []
    notes: list[str] = []
    activated = False
    if plan.kind == "systemd":
        wanted = [["systemctl", "--user", "daemon-reload"],
                  ["systemctl", "--user", "enable", "--now", f"{unit_name(install)}.timer"]]
    else:
        plist = next(iter(plan.files))
        wanted = [["launchctl", "bootout", f"gui/{os.getuid()}/{launchd_label(install)}"],
                  ["launchctl", "bootstrap", f"gui/{os.getuid()}", plist]]
    commands = [" ".join(shlex.quote(a) for a in argv) for argv in wanted]
    if activate:
        for argv in wanted:
            done, out = _run(argv, install.env)
            if not done and argv[1] != "bootout":
                for leftover in [*map(Path, plan.files), notify_path(install)]:  # nothing half-installed:
                    with contextlib.suppress(OSError):  # a unit file that is not enabled never runs
                        leftover.unlink()
                raise env_error(f"'{' '.join(argv)}' failed ({out or 'no output'}); the drill schedule was not "
                                "installed",
                                "run 'moltir drill schedule install' in your login session, or use cron "
                                "('moltir drill schedule install --print')")
        activated = True
    else:
        notes.append("written, not activated: run " + " && ".join(commands[-2:] if plan.kind == "systemd"
                                                                   else commands[-1:]))
    return Schedule(plan.kind, plan.files, activated=activated, commands=tuple(commands), notes=tuple(notes))


def remove_schedule(install: Install, *, platform: str | None = None, deactivate: bool = True) -> list[str]:
    """Disable and delete the schedule's files. Returns what was removed."""
    platform = platform or sys.platform
    removed: list[str] = []
    if platform == "darwin":
        targets = [launch_agents_dir(install) / f"{launchd_label(install)}.plist"]
        if deactivate and targets[0].exists():
            _run(["launchctl", "bootout", f"gui/{os.getuid()}/{launchd_label(install)}"], install.env)
    else:
        name = unit_name(install)
        targets = [systemd_dir(install) / f"{name}.timer", systemd_dir(install) / f"{name}.service"]
        if deactivate and targets[0].exists():
            _run(["systemctl", "--user", "disable", "--now", f"{name}.timer"], install.env)
        # what 'enable' made; left behind when no manager was reachable to 'disable' it
        wants = systemd_dir(install) / "timers.target.wants" / f"{name}.timer"
        if wants.is_symlink() or wants.exists():
            with contextlib.suppress(OSError):
                wants.unlink()
    for t in [*targets, notify_path(install)]:
        try:
            t.unlink()
            removed.append(str(t))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise os_error(exc, f"removing {t}") from None
    if removed and deactivate and platform != "darwin":
        _run(["systemctl", "--user", "daemon-reload"], install.env)
    return removed


def schedule_status(install: Install, *, platform: str | None = None) -> dict[str, Any]:
    platform = platform or sys.platform
    if platform == "darwin":
        files = [launch_agents_dir(install) / f"{launchd_label(install)}.plist"]
    else:
        name = unit_name(install)
        files = [systemd_dir(install) / f"{name}.timer", systemd_dir(install) / f"{name}.service"]
    present = [str(f) for f in files if f.exists()]
    schedule = None
    for f in files:
        if f.suffix == ".timer" and f.exists():
            m = re.search(r"^OnCalendar=(.*)$", f.read_text(encoding="utf-8"), re.M)
            schedule = m.group(1) if m else None
    active = None
    if present and platform.startswith("linux") and shutil.which("systemctl"):
        ok, out = _run(["systemctl", "--user", "is-active", f"{unit_name(install)}.timer"], install.env)
        if out in ("active", "inactive", "activating", "failed"):
            active = out
        else:
            active = "active" if ok else "unknown: no systemd user manager reachable from here"
    history = read_history(install)
    return {"installed": bool(present), "files": present, "schedule": schedule, "timer": active,
            "notify": str(notify_path(install)) if notify_path(install).is_file() else None,
            "last_drill": history[-1] if history else None, "drills": len(history)}
