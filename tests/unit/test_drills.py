"""Drill history and schedule files (golden-compared; systemd-analyze verify where available)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.harness.envelope import moltir_json

from moltir.commands import drills
from moltir.engine.runner import RunResult, StepOutcome
from moltir.errors import EXIT_USAGE, MoltirError
from moltir.openclaw import Install

GOLDEN = Path(__file__).parent / "golden"
MOLTIR = ["/opt/moltir/bin/moltir"]


def alice(tmp_path: Path | None = None) -> Install:
    """A fixed install (paths need not exist) so generated files are byte-stable."""
    home = Path("/home/alice")
    env = {"HOME": str(home), "MOLTIR_HOME": str(home / ".local/state/moltir")}
    if tmp_path is not None:
        home = tmp_path / "alice"
        env = {"HOME": str(home), "MOLTIR_HOME": str(tmp_path / "mh"), "PATH": os.environ.get("PATH", "")}
    from tests.unit.releasefix import pin

    return pin(Install(home=home, state_dir=home / ".openclaw", config_path=home / ".openclaw" / "openclaw.json",
                       profile=None, binary=Path("/usr/local/bin/openclaw"), package=None, env=env), "2026.9.6")


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("MOLTIR_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file (MOLTIR_UPDATE_GOLDEN=1 to accept)"


def test_systemd_units_match_golden() -> None:
    install = alice()
    units = drills.systemd_units(install, drills.cron_fields("weekly"), MOLTIR)
    assert sorted(units) == [f"moltir-drill-{install.key}.service", f"moltir-drill-{install.key}.timer"]
    golden("drill-weekly.service", units[f"moltir-drill-{install.key}.service"])
    golden("drill-weekly.timer", units[f"moltir-drill-{install.key}.timer"])


def test_launchd_plist_matches_golden() -> None:
    golden("drill-weekly.plist", drills.launchd_plist(alice(), drills.cron_fields("weekly"), MOLTIR))


def test_crontab_line_matches_golden() -> None:
    line = drills.crontab_line(alice(), drills.cron_fields("daily"), MOLTIR, platform="linux")
    golden("drill-daily.crontab", line.replace(f"/run/user/{os.getuid()}/", "/run/user/UID/") + "\n")


def test_plist_is_valid_and_expands_cron() -> None:
    import plistlib

    text = drills.launchd_plist(alice(), drills.cron_fields("0,30 2 * * 1-5"), MOLTIR)
    data = plistlib.loads(text.encode())
    assert data["ProgramArguments"][:3] == [*MOLTIR, "drill", "--yes"]
    assert len(data["StartCalendarInterval"]) == 10
    assert {"Minute": 30, "Hour": 2, "Weekday": 5} in data["StartCalendarInterval"]


@pytest.mark.parametrize(("every", "calendar"), [
    ("daily", "*-*-* 03:17:00"),
    ("weekly", "Mon *-*-* 03:17:00"),
    ("*/15 * * * *", "*-*-* *:0/15:00"),
    ("0,30 2 1-15 * 1-5", "Mon..Fri *-*-1..15 02:0,30:00"),
])
def test_on_calendar(every: str, calendar: str) -> None:
    assert drills.on_calendar(drills.cron_fields(every)) == calendar


@pytest.mark.parametrize("bad", ["hourly", "1 2 3 4", "61 * * * *", "* * * * mon", "*/0 * * * *"])
def test_bad_schedules_are_usage_errors(bad: str) -> None:
    with pytest.raises(MoltirError) as err:
        drills.cron_fields(bad)
    assert err.value.exit_code == EXIT_USAGE


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    install = alice(tmp_path)
    moltir = drills.moltir_command()
    assert Path(moltir[0]).is_file()
    units = drills.systemd_units(install, drills.cron_fields("30 2 * * 0"), moltir)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / n) for n in sorted(units))],
                          capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                if "moltir-drill" in ln or "Unknown" in ln or "Invalid" in ln or "bad-setting" in ln]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_install_status_remove_without_activation(tmp_path: Path) -> None:
    install = alice(tmp_path)
    result = drills.install_schedule(install, "daily", platform="linux", moltir=MOLTIR, activate=False)
    assert result.kind == "systemd" and not result.activated
    unit_dir = tmp_path / "alice" / ".config" / "systemd" / "user"
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(Path(f).name for f in result.files)
    assert "systemctl --user enable --now" in result.notes[0]
    status = drills.schedule_status(install, platform="linux")
    assert status["installed"] and status["schedule"] == "*-*-* 03:17:00"
    removed = drills.remove_schedule(install, platform="linux", deactivate=False)
    assert len(removed) == 2 and not any(unit_dir.iterdir())
    assert not drills.schedule_status(install, platform="linux")["installed"]


def test_launchd_install_writes_the_agent(tmp_path: Path) -> None:
    install = alice(tmp_path)
    result = drills.install_schedule(install, "weekly", platform="darwin", moltir=MOLTIR, activate=False)
    (path,) = result.files
    assert path == str(tmp_path / "alice" / "Library" / "LaunchAgents" / f"ai.moltir.drill.{install.key}.plist")
    assert Path(path).read_text() == drills.launchd_plist(install, drills.WEEKLY, MOLTIR)


def _result(ok: bool) -> RunResult:
    rotate = StepOutcome("rotate-token", "token.rotate", "done" if ok else "failed", "rotated",
                         {"new_fingerprint": "aaaa1111", "old_fingerprint": "bbbb2222", "mode": "keyring-ref",
                          "route": "SIGUSR2"} if ok else {}, 2500, "" if ok else "keyring locked", 0 if ok else 3)
    steps = [rotate]
    if ok:
        steps.append(StepOutcome("prove-token", "token.verify", "done", "proved",
                                 {"new_status": 400, "old_status": 401}, 300))
    return RunResult("drill", "ok" if ok else "failed", 0 if ok else 3, "case-1", "/x", tuple(steps),
                     message="drill done" if ok else "drill incomplete")


def test_history_records_successes_and_failures(tmp_path: Path) -> None:
    install = alice(tmp_path)
    first = drills.record_result(install, _result(True))
    drills.record_result(install, _result(False))
    records = drills.read_history(install)
    assert [r["outcome"] for r in records] == ["ok", "failed"]
    assert records[0] == first
    assert first["fingerprints"] == {"new": "aaaa1111", "old": "bbbb2222"}
    assert first["proof"] == {"new_status": 400, "old_status": 401}
    assert first["duration_ms"] == 2800 and first["route"] == "SIGUSR2"
    assert records[1]["exit_code"] == 3 and records[1]["steps"][0]["error"] == "keyring locked"
    path = drills.history_path(install)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = drills.render_history(records)
    assert "bbbb2222 -> aaaa1111" in text and "failed" in text
    assert "exit 3: keyring locked" in text  # why it failed
    untested = {**first, "proof": {"new_status": 400, "old_status": None}}
    assert "old not tested" in drills.render_history([untested]) and "None" not in drills.render_history([untested])


def test_cli_history_and_schedule(tmp_path: Path) -> None:
    from moltir.cli import cli

    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    runner = CliRunner()
    base = ["--state-dir", str(state)]
    out = runner.invoke(cli, [*base, "drill", "history", "--json"])
    assert out.exit_code == 0, out.output
    assert moltir_json(out.output)["drills"] == []
    out = runner.invoke(cli, [*base, "drill", "schedule", "install", "--every", "weekly", "--print"])
    assert out.exit_code == 0 and out.output.startswith("17 3 * * 1 ")
    assert f"--state-dir {state}" in out.output
    out = runner.invoke(cli, [*base, "drill", "schedule", "install", "--every", "nope"])
    assert out.exit_code == EXIT_USAGE and "--every" in out.output
    if sys.platform.startswith("linux"):
        out = runner.invoke(cli, [*base, "drill", "schedule", "install", "--every", "daily", "--no-activate"])
        assert out.exit_code == 0, out.output
        out = runner.invoke(cli, [*base, "drill", "schedule", "status", "--json"])
        assert moltir_json(out.output)["installed"] is True
        out = runner.invoke(cli, [*base, "drill", "schedule", "remove", "--json"])
        assert len(moltir_json(out.output)["removed"]) == 2


# ---- acceptance findings: no user manager, half-installed schedules, the job's environment ----------

def _fake_systemctl(tmp_path: Path, *, reachable: bool, enable_ok: bool = True) -> dict[str, str]:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "systemctl.log"
    script = bin_dir / "systemctl"
    show = "echo PATH=/usr/bin; exit 0" if reachable else 'echo "Failed to connect to bus: No medium found" >&2; exit 1'
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$2" in
  show-environment) {show};;
  enable) {'exit 0' if enable_ok else 'echo "Failed to enable unit: Access denied" >&2; exit 1'};;
esac
exit 0
""")
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_install_without_a_user_manager_says_so_and_writes_nothing(tmp_path: Path) -> None:
    from dataclasses import replace

    base = alice(tmp_path)
    install = replace(base, env={**base.env, **_fake_systemctl(tmp_path, reachable=False)})
    with pytest.raises(MoltirError) as err:
        drills.install_schedule(install, "weekly", platform="linux", moltir=MOLTIR)
    assert err.value.exit_code == 3
    assert "no systemd user manager is reachable" in err.value.message and "nothing was written" in err.value.message
    assert "--print" in err.value.hint and "crontab -e" in err.value.hint
    assert not drills.systemd_dir(install).exists() or not any(drills.systemd_dir(install).iterdir())
    assert not drills.schedule_status(install, platform="linux")["installed"]


def test_an_activation_that_fails_leaves_no_half_installed_schedule(tmp_path: Path) -> None:
    from dataclasses import replace

    base = alice(tmp_path)
    install = replace(base, env={**base.env, **_fake_systemctl(tmp_path, reachable=True, enable_ok=False)})
    with pytest.raises(MoltirError) as err:
        drills.install_schedule(install, "weekly", platform="linux", moltir=MOLTIR)
    assert err.value.exit_code == 3 and "Access denied" in err.value.message
    assert not any(drills.systemd_dir(install).iterdir())
    ok_install = replace(base, env={**base.env, **_fake_systemctl(tmp_path, reachable=True)})
    result = drills.install_schedule(ok_install, "weekly", platform="linux", moltir=MOLTIR)
    assert result.activated and len(result.files) == 2


def test_remove_also_drops_the_enable_link(tmp_path: Path) -> None:
    install = alice(tmp_path)
    result = drills.install_schedule(install, "daily", platform="linux", moltir=MOLTIR, activate=False)
    timer = next(f for f in result.files if f.endswith(".timer"))
    wants = drills.systemd_dir(install) / "timers.target.wants"
    wants.mkdir()
    (wants / Path(timer).name).symlink_to(timer)
    drills.remove_schedule(install, platform="linux", deactivate=False)
    assert not (wants / Path(timer).name).is_symlink()


def test_the_job_runs_with_this_moltir_home_and_path(tmp_path: Path) -> None:
    install = alice(tmp_path)
    line = drills.crontab_line(install, drills.DAILY, MOLTIR, platform="linux")
    assert f"MOLTIR_HOME={tmp_path / 'mh'} " in line and "PATH=" in line
    service = drills.systemd_units(install, drills.DAILY, MOLTIR)[f"{drills.unit_name(install)}.service"]
    assert f"Environment=MOLTIR_HOME={tmp_path / 'mh'}\n" in service


def test_print_creates_the_folder_the_cron_line_logs_to(tmp_path: Path) -> None:
    from moltir.cli import cli

    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    out = CliRunner().invoke(cli, ["--state-dir", str(state), "drill", "schedule", "install", "--print"],
                             env={"MOLTIR_HOME": str(tmp_path / "mh")})
    assert out.exit_code == 0, out.output
    log = Path(out.output.split(">> ")[1].split()[0])
    assert log.parent.is_dir() and oct(log.parent.stat().st_mode & 0o777) == "0o700"
