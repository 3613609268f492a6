"""``moltir harden`` and ``moltir harden --undo`` against the real releases (2026.9.6, 2026.1.29), on a
deliberately weak config: open DMs (with the ``*`` wildcard), an open group policy, ``bind: "lan"``,
insecure Control UI auth (2026.1.29 only: 2026.9.6 rejects the key, "Unrecognized key"), a 0755 state dir.

What the real audits report on that config (``openclaw security audit --json``, seen by running them):

* 2026.1.29: ``gateway.control_ui.insecure_auth``, ``security.exposure.open_groups_with_elevated``,
  ``fs.state_dir.perms_readable``, ``channels.telegram.dm.open`` (no finding for ``bind: "lan"``
  with token auth);
* 2026.9.6: ``gateway.control_ui.allowed_origins_required`` and ``gateway.auth_no_rate_limit`` (the
  non-loopback bind), ``security.exposure.open_groups_with_{elevated,runtime_or_fs,control_plane_tools}``
  (listing the open DM and group paths), ``fs.state_dir.perms_readable``.

One test per release, one gateway start each (after hardening: it must still start and answer on its
token)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome

TARGETED = {
    "2026.1.29": {"gateway.control_ui.insecure_auth", "security.exposure.open_groups_with_elevated",
                  "fs.state_dir.perms_readable", "channels.telegram.dm.open"},
    "2026.9.6": {"gateway.control_ui.allowed_origins_required", "gateway.auth_no_rate_limit",
                 "security.exposure.open_groups_with_elevated", "security.exposure.open_groups_with_runtime_or_fs",
                 "security.exposure.open_groups_with_control_plane_tools", "fs.state_dir.perms_readable"},
}


def _weaken(text: str, current: bool) -> str:
    bind = 'bind: "lan",' + ("" if current else "\n    controlUi: { allowInsecureAuth: true },")
    weak = text.replace('bind: "loopback",', bind, 1)
    weak = weak.replace('dmPolicy: "pairing",\n      groupPolicy: "allowlist",',
                        'dmPolicy: "open",\n      allowFrom: ["*"],\n      groupPolicy: "open",', 1)
    assert weak.count('"open"') >= 4 and 'bind: "lan"' in weak, "the harness config changed shape"
    return weak


def _moltir(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=400, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _audit_ids(home: OpenClawHome) -> set[str]:
    proc = home.run_openclaw("security", "audit", "--json", timeout=240)
    assert proc.returncode == 0, f"audit rc {proc.returncode}: {proc.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(proc.stdout[proc.stdout.index("{"):])  # 2026.1.29: doctor boxes first
    return {f["checkId"] for f in report["findings"]}


def _snapshot(home: OpenClawHome) -> dict[str, Any]:
    """The config's bytes and the modes of the state dir and every file moltir may touch."""
    paths = [home.state_dir, home.config_path, *sorted((home.state_dir / "credentials").rglob("*"))]
    return {"config": home.config_path.read_bytes(),
            "modes": {str(p): stat.S_IMODE(p.lstat().st_mode) for p in paths if p.exists()}}


def test_harden_dry_run_apply_audit_gateway_and_undo(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    current = home.release.current
    home.config_path.write_text(_weaken(home.config_path.read_text(), current), encoding="utf-8")
    home.state_dir.chmod(0o755)
    env = {**home.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    weak = _snapshot(home)
    targeted = TARGETED[home.release.id]
    before = _audit_ids(home)
    assert targeted <= before, f"the weak config does not show what harden targets: {sorted(targeted - before)}"

    # --dry-run: the diff, and nothing changed (bytes and modes)
    dry = _moltir(env, home.root, "harden", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    plan = {p["id"]: p for p in moltir_json(dry.stdout)["plan"]}
    assert '-      dmPolicy: "open",' in plan["dm-access"]["diff"]
    assert '+      groupPolicy: "allowlist",' in plan["groups"]["diff"]
    assert '+    bind: "loopback",' in plan["bind"]["diff"]
    assert [c["after"] for c in plan["permissions"]["changes"]] == ["0700"]
    assert plan["control-ui"]["already_done"] is current  # 2026.9.6 has no such key
    assert _snapshot(home) == weak

    # --yes: every targeted finding gone from the REAL audit; the gateway starts and answers on its token
    run = _moltir(env, home.root, "harden", "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    result = moltir_json(run.stdout)
    assert [s["status"] for s in result["steps"]] == ["done"] * 4 + ["already" if current else "done", "done", "done"]
    after = _audit_ids(home)
    assert not targeted & after, f"still reported after harden: {sorted(targeted & after)}"
    assert stat.S_IMODE(home.state_dir.stat().st_mode) == 0o700
    valid, detail = home.validate_config()
    assert valid, detail
    gw = Gateway(home)
    gw.start()
    try:
        assert gw.token_status(home.token) == 400 and gw.token_status("wrong-" + home.token) == 401
    finally:
        gw.stop()
        gw.assert_stopped()

    # --undo: the config bytes and the modes exactly as before
    undo = _moltir(env, home.root, "harden", "--undo", "--yes", "--json")
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert _snapshot(home) == weak
    again = _moltir(env, home.root, "harden", "--undo", "--yes", "--json")  # a second undo: nothing more
    assert again.returncode == 0 and moltir_json(again.stdout)["steps"][0]["status"] == "done-earlier"
    assert _snapshot(home) == weak
