"""The whole incident cycle on a real gateway: ``moltir contain --yes`` then ``moltir restore --yes``.

On both real releases (2026.9.6: token moved into the keyring behind an exec SecretRef;
2026.1.29: plaintext token in the 0600 config, keyring copy as the record), with the real
Secret Service, the harness's commented multi-channel config and a real running gateway:

* after contain: the gateway is down, every DM policy is "disabled", the deep audit ran;
* after restore: the gateway runs again, DM policies equal the pre-incident values, the old
  token is refused and the new one accepted, the final deep audit report is in the case (its
  probe authenticated), ``moltir status`` says restored, and the config equals its pre-image
  except ``gateway.auth`` / ``secrets`` (comments kept);
* restoring again is a no-op that says so; no token reaches the console, the journal, the
  restore record or the audit evidence.
"""

from __future__ import annotations

import copy
import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import json5
import pytest
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import port_is_open, wait_until
from tests.harness.risk import EXPOSURE, accept_open_dms, open_dm_risks
from tests.harness.secret_service import SecretService

from moltir.openclaw import discover
from moltir.redaction import fingerprint


def _moltir(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _keyring_token(env: dict[str, str], entry: str) -> str:
    code = "import keyring, sys; v = keyring.get_password('moltir', sys.argv[1]); print(v or '')"
    proc = subprocess.run([sys.executable, "-c", code, entry], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return proc.stdout.strip()


def _records(case: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines() if line.strip()]


def _get(doc: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return "<absent>"
        doc = doc[key]
    return doc


def _without_auth(cfg: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    out.get("gateway", {}).pop("auth", None)
    out.pop("secrets", None)
    return out


def _contain_first(env: dict[str, str], home: OpenClawHome, reason: str) -> tuple[Path, list[list[str]]]:
    """``moltir contain`` the running gateway; the case folder and the DM paths it recorded."""
    first = _moltir(env, home.root, "contain", "--yes", "--reason", reason)
    assert first.returncode == 0, first.stdout + first.stderr
    wait_until(lambda: not port_is_open(home.port), 30, what="gateway down after the first contain")
    case = Path(moltir_json(_moltir(env, home.root, "status", "--json").stdout)["case"]["dir"])
    return case, [e["path"] for e in json.loads((case / "restore.json").read_text())["dm_policy"]["paths"]]


def test_contain_then_restore(openclaw_home: OpenClawHome, secret_service: SecretService) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)             # the gateway and moltir share the private keyring
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    pre_bytes = home.config_path.read_bytes()
    pre = json5.loads(pre_bytes.decode())
    old = home.token
    gw = Gateway(home).start()
    try:
        assert gw.token_status(old) == 400

        # ---- contain ------------------------------------------------------------------------
        contain = _moltir(env, home.root, "contain", "--yes", "--reason", "full-cycle test")
        out = contain.stdout + contain.stderr
        assert contain.returncode == 0, out
        assert "Traceback" not in out
        # the result once, on stdout; progress on stderr
        assert contain.stdout.count("contain: all 6 steps done") == 1 and "steps done" not in contain.stderr, out
        wait_until(lambda: not port_is_open(home.port), 30, what="gateway port closed after contain")
        contained = json5.loads(home.config_path.read_text())
        status = moltir_json(_moltir(env, home.root, "status", "--json").stdout)
        assert status["status"] == "contained"
        case = Path(status["case"]["dir"])
        # steps in runbook order, each stamped when it took effect: stop-gateway (verified only when its
        # respawn watch ended, after the deep audit) when the gateway went down
        steps = status["runs"]["contain"]["steps"]
        assert [s["id"] for s in steps] == ["stop-gateway", "disable-dms", "rotate-token", "credentials", "snapshot",
                                             "deep-audit"]
        assert all(s["state"] == "done" for s in steps)
        records = [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines()]
        applied = next(r["ts"] for r in records if r["event"] == "step.applied" and r["step"] == "stop-gateway")
        assert steps[0]["at"] == applied and applied <= steps[1]["at"] <= steps[4]["at"]
        # the case is private throughout: folders 0700 (sealed evidence 0500), files 0600 (sealed 0400)
        for path in [case, *case.rglob("*")]:
            assert stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0, path
        record = json.loads((case / "restore.json").read_text())
        dm_paths = [e["path"] for e in record["dm_policy"]["paths"]]
        assert dm_paths
        # 2026.9.x: the new token was staged and boot-checked during the gateway's drain (Rotate.prepare)
        generated = next(r for r in records if r["event"] == "token.generated")
        assert generated["prepared"] is discover(env=env).caps.gateway_token_secretref
        for path in dm_paths:
            if path[-1] in ("dmPolicy", "policy"):
                assert _get(contained, path) == "disabled", path

        # ---- restore without --accept-risk: refused, nothing changed -------------------------------
        # it would put the open DMs back: the check ids this release's audit flags them with are needed
        risks = open_dm_risks(home.release.id)
        dry = _moltir(env, home.root, "restore", "--dry-run")
        assert dry.returncode == 2 and all(f"needs --accept-risk {r}" in dry.stderr for r in risks), dry.stderr
        contained_bytes = home.config_path.read_bytes()
        refused = _moltir(env, home.root, "restore", "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
        assert " ".join(f"--accept-risk {r}" for r in risks) in refused.stderr
        assert home.config_path.read_bytes() == contained_bytes and not port_is_open(home.port)
        assert [r["check_ids"] for r in _records(case) if r["event"] == "restore.refused"] == [list(risks)]

        # ---- restore ------------------------------------------------------------------------
        restore = _moltir(env, home.root, "restore", "--yes", *accept_open_dms(home.release.id))
        out_restore = restore.stdout + restore.stderr
        assert restore.returncode == 0, out_restore
        assert "Traceback" not in out_restore
        assert restore.stdout.count("restore: all 5 steps done") == 1 and "steps done" not in restore.stderr

        # the gateway runs again, on the NEW token; the old one stays refused
        assert port_is_open(home.port)
        install = discover(env=env)
        new = _keyring_token(env, f"gateway-token:{install.key}")
        assert new and new != old
        assert fingerprint(new) == record["token"]["new_fingerprint"]
        assert gw.token_status(new) == 400
        assert gw.token_status(old) == 401
        # ... and restore proved both itself (the old token read back from the case's pre-image)
        proofs = [r for r in _records(case) if r.get("event") == "token.proved" and r.get("step") == "verify-token"]
        assert proofs and proofs[-1]["new_status"] == 400 and proofs[-1]["old_status"] == 401
        assert proofs[-1]["old_fingerprint"] == fingerprint(old)

        # DM policies equal the pre-incident values; the rest of the config equals its pre-image
        post_text = home.config_path.read_text()
        post = json5.loads(post_text)
        for path in dm_paths:
            assert _get(post, path) == _get(pre, path), path
        assert _without_auth(post) == _without_auth(pre)
        if install.caps.gateway_token_secretref:
            assert post["gateway"]["auth"]["token"]["source"] == "exec"
            assert new not in post_text
        else:
            assert post["gateway"]["auth"]["token"] == new
        for comment in re.findall(r"//[^\n]*", pre_bytes.decode()):
            assert comment in post_text, f"comment lost: {comment}"

        # the final deep audit: in the case, probe authenticated with the gateway up
        final = case / "evidence" / "audit" / "restore-final-audit" / "security-audit.json"
        report = json.loads(final.read_text())
        assert report["deep"]["gateway"]["attempted"] is True
        done = [r for r in _records(case) if r.get("event") == "step.done" and r.get("step") == "final-audit"]
        assert done and done[-1]["details"]["probe"]["state"] == "authenticated"
        assert done[-1]["details"]["gateway_expected"] == "up"
        # the pre-incident config had open DMs: restore says they are back
        assert "restore put back OPEN DM policies" in out_restore
        # ... the risks it accepted are in the journal, and the real audit flags them with those ids
        assert [r["check_ids"] for r in _records(case) if r["event"] == "risk.accepted"] == [list(risks)]
        flagged = {f["checkId"] for f in report["findings"]}
        seen = {"2026.9.6": EXPOSURE, "2026.1.29": "channels.telegram.dm.open"}[home.release.id]
        assert seen in risks and seen in flagged, sorted(flagged)

        status = moltir_json(_moltir(env, home.root, "status", "--json").stdout)
        assert status["status"] == "restored"
        assert "restored" in _moltir(env, home.root, "status").stdout

        # ---- restore again: a no-op that says so -----------------------------------------------
        again = _moltir(env, home.root, "restore", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already restored" in again.stdout + again.stderr
        assert gw.token_status(new) == 400

        # ---- no token leaked ----------------------------------------------------------------
        texts = {"contain output": out, "restore output": out_restore,
                 "journal": (case / "journal.jsonl").read_text(),
                 "restore.json": (case / "restore.json").read_text(),
                 "case.json": (case / "case.json").read_text()}
        for path in (case / "evidence" / "audit").rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_text(errors="replace")
        for where, text in texts.items():
            assert new not in text, f"the new token leaked into {where}"
            assert old not in text, f"the old token leaked into {where}"
    finally:
        gw.stop()


def test_contain_again_after_the_gateway_came_back_and_a_dm_was_opened(openclaw_home: OpenClawHome,
                                                                       secret_service: SecretService) -> None:
    """A contained case, then the gateway is started again and a DM reopened by hand: ``moltir contain``
    must contain again (not 'nothing to do'), and restore still puts back the PRE-incident values."""
    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    pre = json5.loads(home.config_path.read_text())
    first_gw = Gateway(home).start()
    again_gw: Gateway | None = None
    try:
        case, dm_paths = _contain_first(env, home, "first")

        # someone starts it again, on the new token (the harness waits until that token is accepted)
        home.token = _keyring_token(env, f"gateway-token:{discover(env=env).key}")
        again_gw = Gateway(home).start()
        text = home.config_path.read_text()
        assert 'dmPolicy: "disabled"' in text
        home.config_path.write_text(text.replace('dmPolicy: "disabled"', 'dmPolicy: "open"', 1))

        second = _moltir(env, home.root, "contain", "--yes", "--json")
        assert second.returncode == 0, second.stdout + second.stderr
        result = moltir_json(second.stdout)
        assert result["case_dir"] == str(case) and set(result["regressed"]) == {"stop-gateway", "disable-dms"}
        assert "running again" in result["regressed"]["stop-gateway"]
        states = {s["id"]: s["status"] for s in result["steps"]}
        assert states["stop-gateway"] == "done" and states["disable-dms"] == "done"
        assert states["rotate-token"] == "done-earlier"
        wait_until(lambda: not port_is_open(home.port), 30, what="gateway down after the second contain")
        contained = json5.loads(home.config_path.read_text())
        for path in dm_paths:
            if path[-1] in ("dmPolicy", "policy"):
                assert _get(contained, path) == "disabled", path

        restore = _moltir(env, home.root, "restore", "--yes", *accept_open_dms(home.release.id))
        assert restore.returncode == 0, restore.stdout + restore.stderr
        post = json5.loads(home.config_path.read_text())
        for path in dm_paths:
            assert _get(post, path) == _get(pre, path), path
    finally:
        first_gw.stop()
        if again_gw is not None:
            again_gw.stop()


def test_contain_new_case_while_contained_then_restore_puts_back_the_pre_incident_state(
        openclaw_home: OpenClawHome, secret_service: SecretService) -> None:
    """``contain --new-case`` while the first containment still holds (a second alert, say): the new
    case must not record the contained state as the one to go back to. Its restore puts back the
    pre-incident DM policies and starts the gateway again, on the newest token."""
    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    pre = json5.loads(home.config_path.read_text())
    old = home.token
    gw = Gateway(home).start()
    try:
        first_case, dm_paths = _contain_first(env, home, "first alert")
        install = discover(env=env)
        entry = f"gateway-token:{install.key}"
        first_new = _keyring_token(env, entry)

        second = _moltir(env, home.root, "contain", "--yes", "--new-case", "--json", "--reason", "second alert")
        assert second.returncode == 0, second.stdout + second.stderr
        result = moltir_json(second.stdout)
        assert result["case_dir"] != str(first_case)
        assert "is still contained" in second.stderr
        newest = _keyring_token(env, entry)
        assert newest and newest not in (first_new, old)

        restore = _moltir(env, home.root, "restore", "--yes", *accept_open_dms(home.release.id))
        assert restore.returncode == 0, restore.stdout + restore.stderr
        post = json5.loads(home.config_path.read_text())
        for path in dm_paths:
            assert _get(post, path) == _get(pre, path), path
        assert port_is_open(home.port)
        assert gw.token_status(newest) == 400
        assert gw.token_status(first_new) == 401 and gw.token_status(old) == 401
        # the first case, looked at directly, is restored by the case that continued it
        st = _moltir(env, home.root, "status", "--case-dir", str(first_case), "--json")
        assert moltir_json(st.stdout)["status"] == "restored-by-later-case", st.stdout
        again = _moltir(env, home.root, "restore", "--yes", "--case-dir", str(first_case))
        assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr
        assert gw.token_status(newest) == 400
    finally:
        gw.stop()


RESPAWNER = r'''
import subprocess, sys
binary, log = sys.argv[1], sys.argv[2]
while True:   # a supervisor moltir does not know: restarts the gateway whenever it dies
    with open(log, "ab") as fh:
        subprocess.Popen([binary, "gateway", "run"], stdin=subprocess.DEVNULL, stdout=fh,
                         stderr=subprocess.STDOUT).wait()
'''


@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True)
def test_a_stop_that_fails_still_disables_dms_and_rotates_the_token(openclaw_home: OpenClawHome,
                                                                     secret_service: SecretService) -> None:
    """An unknown supervisor brings the gateway back: the stop fails (exit 5, the supervisor named),
    but the bot is not left open: the DMs are disabled and the token rotated, and the gateway that
    came back runs on the NEW token with DMs off; the run says what is left. (Release-independent
    engine behaviour: run on 2026.9.6 only, to keep `make test` within its time.)"""
    import os
    import signal

    from tests.harness.procs import kill_leftovers

    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    old = home.token
    script = home.root / "respawner.py"
    script.write_text(RESPAWNER)
    sup = subprocess.Popen([sys.executable, str(script), str(home.openclaw_bin), str(home.root / "sup.log")],
                           env=env, cwd=home.home, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: Gateway(home).token_status(old) == 400, 180, what="supervised gateway")
        contain = _moltir(env, home.root, "contain", "--yes", "--json")
        assert contain.returncode == 5, contain.stdout + contain.stderr
        result = moltir_json(contain.stdout)
        steps = {s["id"]: s for s in result["steps"]}
        assert steps["stop-gateway"]["status"] == "failed" and "respawner.py" in steps["stop-gateway"]["error"]
        assert steps["disable-dms"]["status"] == "done" and steps["rotate-token"]["status"] == "done"
        assert "stop-gateway" in result["message"] and "again" in result["message"]
        cfg = json5.loads(home.config_path.read_text())
        assert cfg["channels"]["telegram"]["dmPolicy"] == "disabled"
        new = _keyring_token(env, f"gateway-token:{discover(env=env).key}")
        assert new and new != old
        wait_until(lambda: Gateway(home).token_status(new) == 400, 180, what="the gateway that came back, on the "
                                                                              "new token")
        assert Gateway(home).token_status(old) == 401
    finally:
        os.killpg(sup.pid, signal.SIGKILL)
        sup.wait(timeout=10)
        kill_leftovers(home.state_dir)
