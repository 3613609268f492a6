"""``moltir.commands.fleet``: merge per-host results into one report, render it as text and Markdown.

The result shapes are moltir's own (``moltir.result/1`` envelopes of contain / restore / status / evidence
export, as the real commands print them: see tests/integration/test_fleet.py for the same against real
hosts), wrapped the ways a fleet run produces them: bare envelopes named by host, the moltir.openclaw
module results the playbooks save, Ansible's tree callback folder, ansible.posix.json / jsonl output.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moltir.commands import fleet
from moltir.errors import MoltirError

FOREIGN = ("the gateway for /home/ann/.openclaw runs as root, not as the user moltir runs as (uid 1001): "
           "pid 4242 (openclaw-gateway port 18789 user root); nothing was signalled")
FOREIGN_HINT = "run moltir as that user (e.g. sudo -u root -H moltir ...), with the same --state-dir"


def envelope(command: str, data: dict[str, Any], exit_code: int = 0,
             errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"schema": "moltir.result/1", "ok": exit_code == 0, "command": command, "exit_code": exit_code,
            "data": data, "errors": errors or []}


def step(sid: str, action: str, status: str = "done", **details: Any) -> dict[str, Any]:
    return {"id": sid, "action": action, "status": status, "details": details, "duration_ms": 1, "error": None,
            "summary": "", "warnings": []}


def contained(case: str = "20261206T195113Z-f03b", fp: str = "7c8b36c6", critical: int = 0) -> dict[str, Any]:
    crit = [{"checkId": f"security.exposure.check{i}", "severity": "critical"} for i in range(critical)]
    return envelope("contain", {
        "case_dir": f"/home/x/.local/state/moltir/cases/{case}", "case_id": case, "exit_code": 0,
        "message": f"contain: all 6 steps done (case {case})", "regressed": {}, "resumed_from": None,
        "runbook": "contain", "status": "ok",
        "steps": [step("stop-gateway", "gateway.stop", pid=1, forced=False),
                  step("disable-dms", "dm_policy.set", changed=["channels.telegram.dmPolicy"]),
                  step("rotate-token", "token.rotate", new_fingerprint=fp, old_fingerprint="5b98f343",
                       mode="keyring-ref"),
                  step("credentials", "credentials.inventory", count=7, file="evidence/credentials/inventory.json"),
                  step("snapshot", "evidence.snapshot", files=9, listed=2, manifest_sha256="ab" * 32),
                  step("deep-audit", "audit.run", counts={"critical": critical, "info": 1, "warn": 2},
                       critical=crit)]})


def nothing_to_do(case: str = "20261206T195113Z-f03b") -> dict[str, Any]:
    return envelope("contain", {
        "case_dir": f"/c/{case}", "case_id": case, "status": "noop", "runbook": "contain",
        "message": f"nothing to do: every step of 'contain' is already done in case {case}",
        "steps": [step(s, a, "done-earlier") for s, a in (("stop-gateway", "gateway.stop"),
                                                          ("rotate-token", "token.rotate"))]})


def refused() -> dict[str, Any]:
    return envelope("contain", {"message": FOREIGN}, exit_code=3,
                    errors=[{"message": FOREIGN, "hint": FOREIGN_HINT, "code": "environment"}])


def exported(sha: str = "91bd" + "0" * 60) -> dict[str, Any]:
    return envelope("evidence export", {"archive": "/tmp/moltir-export-x/case.tar.gz", "sha256": sha,
                                        "size": 81595, "encrypted": False, "members": 34,
                                        "case_dir": "/c/20261206T195113Z-f03b", "case_state": "sealed"})


def restored(fp: str = "7c8b36c6") -> dict[str, Any]:
    return envelope("restore", {
        "case_id": "20261206T195113Z-f03b", "status": "ok", "message": "restore: all 4 steps done",
        "steps": [step("restore-dms", "dm_policy.restore"),
                  step("start-gateway", "gateway.start", token_fingerprint=fp),
                  step("verify-token", "token.verify", new_fingerprint=fp, old_fingerprint="5b98f343",
                       new_status=400, old_status=401),
                  step("final-audit", "audit.run", counts={"critical": 3, "info": 1, "warn": 2},
                       critical=[{"checkId": "security.exposure.open_groups_with_elevated"}])]})


def module_result(host: str, env: dict[str, Any], changed: bool, **extra: Any) -> dict[str, Any]:
    out = {"host": host, "changed": changed, "failed": not env["ok"], "rc": env["exit_code"], "moltir": env,
           "msg": (env["errors"][0]["message"] if env["errors"] else env["data"].get("message")),
           "invocation": {"module_args": {"profile": None}}}
    out.update(extra)
    return out


def write(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, indent=2))
    return path


def row(report: dict[str, Any], host: str, profile: str = "default") -> dict[str, Any]:
    found = [r for r in report["hosts"] if r["host"] == host and r["profile"] == profile]
    assert len(found) == 1, report["hosts"]
    return found[0]


# ---- inputs -------------------------------------------------------------------------------------

def test_bare_envelopes_named_by_their_files(tmp_path: Path) -> None:
    """The plain ssh loop: ``ssh HOST moltir contain --yes --json > results/HOST.json``."""
    write(tmp_path / "web1.json", contained(fp="11111111", critical=1))
    write(tmp_path / "web2.example.org.json", refused())
    report = fleet.merge([tmp_path / "web1.json", tmp_path / "web2.example.org.json"])
    ok, bad = row(report, "web1"), row(report, "web2.example.org")
    assert ok["state"] == "contained" and ok["contained"] is True and ok["rc"] == 0
    assert ok["token_fingerprint"] == "11111111"
    assert ok["findings"]["critical"] == 1 and ok["findings"]["critical_ids"] == ["security.exposure.check0"]
    assert ok["credentials"] == {"listed": 2, "inventoried": 7}
    assert ok["case_id"] == "20261206T195113Z-f03b"
    assert bad["state"] == "failed" and bad["contained"] is False and bad["rc"] == 3
    assert bad["message"] == FOREIGN and bad["errors"][0]["hint"] == FOREIGN_HINT
    assert report["summary"] == {"hosts": 2, "installs": 2, "missing": 0, "contained": 1, "not_contained": 1,
                                 "failed": 1, "unreachable": 0}
    assert fleet.exit_code(report) == 6 and report["ok"] is False


def test_playbook_results_merge_into_one_row_per_host(tmp_path: Path) -> None:
    """What contain.yml / evidence.yml save with moltir_results_dir: the first contain's fingerprint, the
    second contain's "nothing to do", the fetched archive's verified hash, in one row."""
    first, second, evidence = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    for d in (first, second, evidence):
        d.mkdir()
    write(first / "h1.contain.json", module_result("h1", contained(fp="aaaa1111"), True, contained=True))
    write(first / "h2.contain.json", module_result("h2", contained(fp="bbbb2222"), True, contained=True))
    write(second / "h1.contain.json", module_result("h1", nothing_to_do(), False, contained=True))
    write(second / "h2.contain.json", module_result("h2", nothing_to_do(), False, contained=True))
    write(evidence / "h1.evidence.json", module_result("h1", exported("ee" * 32), True, verified=True,
                                                       dest="/srv/ir/h1/20261206T195113Z-f03b.tar.gz"))
    report = fleet.merge([first, second, evidence], inventory=["h1", "h2", "h3"])
    h1, h2 = row(report, "h1"), row(report, "h2")
    assert h1["token_fingerprint"] == "aaaa1111" and h2["token_fingerprint"] == "bbbb2222"
    assert h1["changed"] is False and h1["state"] == "contained" and h1["contained"] is True
    assert h1["evidence"] == {"sha256": "ee" * 32, "size": 81595, "verified": True, "encrypted": False,
                              "archive": "/srv/ir/h1/20261206T195113Z-f03b.tar.gz"}
    assert h2["evidence"] is None
    assert [r["command"] for r in h1["runs"]] == ["contain", "contain", "evidence export"]
    assert [r["changed"] for r in h1["runs"]] == [True, False, True]
    assert report["missing"] == ["h3"]
    assert fleet.exit_code(report) == 6, "a host that did not report is not a clean fleet"
    assert fleet.exit_code(fleet.merge([first, second])) == 0


def test_restore_after_contain(tmp_path: Path) -> None:
    write(tmp_path / "h1.contain.json", module_result("h1", contained(fp="cafe0001"), True))
    write(tmp_path / "h1.restore.json", module_result("h1", restored(fp="cafe0001"), True))
    report = fleet.merge([tmp_path / "h1.contain.json", tmp_path / "h1.restore.json"])
    h1 = row(report, "h1")
    assert h1["state"] == "restored" and h1["contained"] is False and h1["command"] == "restore"
    assert h1["token_fingerprint"] == "cafe0001"
    assert h1["findings"]["critical"] == 3, "the latest audit (the restore's) counts"
    assert fleet.exit_code(report) == 0


def test_tree_callback_folder_and_status(tmp_path: Path) -> None:
    """``ansible all -m moltir.openclaw.status -t DIR``: one file per host, named by it, no extension."""
    tree = tmp_path / "tree"
    tree.mkdir()
    write(tree / "db1", module_result("ignored-when-host-key-is-set", envelope("status", {
        "status": "contained", "case": {"id": "c1"},
        "install": {"profile": None, "state_dir": "/home/db/.openclaw"}}), False) | {"host": "db1"})
    (tree / "db2").write_text(json.dumps({"unreachable": True, "changed": False,
                                          "msg": "Failed to connect to the host via ssh: timeout"}))
    report = fleet.merge([tree])
    assert row(report, "db1")["state"] == "contained" and row(report, "db1")["contained"] is True
    assert row(report, "db1")["state_dir"] == "/home/db/.openclaw" and row(report, "db1")["case_id"] == "c1"
    db2 = row(report, "db2")
    assert db2["state"] == "unreachable" and db2["contained"] is None and "timeout" in db2["message"]
    assert report["summary"]["unreachable"] == 1 and fleet.exit_code(report) == 6


def test_ansible_posix_json_output(tmp_path: Path) -> None:
    """``ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ansible-playbook moltir.openclaw.contain > run.json``."""
    doc = {"plays": [{"play": {"name": "Contain"}, "tasks": [
        {"task": {"name": "Contain the gateway"}, "hosts": {
            "a": module_result("a", contained(fp="0000000a"), True) | {"action": "moltir.openclaw.contain"},
            "b": module_result("b", refused(), False) | {"action": "moltir.openclaw.contain", "failed": True}}},
        {"task": {"name": "Save this host's result on the controller"}, "hosts": {
            "a": {"changed": False, "dest": "/r/a.contain.json", "action": "ansible.builtin.copy"}}}]}],
        "stats": {"a": {"ok": 2, "failures": 0, "unreachable": 0}, "b": {"ok": 0, "failures": 1, "unreachable": 0},
                  "c": {"ok": 0, "failures": 0, "unreachable": 1}}}
    report = fleet.merge([write(tmp_path / "run.json", doc)], inventory=["a", "b", "c", "d"])
    assert row(report, "a")["state"] == "contained"
    assert row(report, "b")["state"] == "failed" and row(report, "b")["message"] == FOREIGN
    assert row(report, "c")["state"] == "unreachable"
    assert report["missing"] == ["d"]


def test_ansible_posix_jsonl_events(tmp_path: Path) -> None:
    lines = [{"_event": "v2_playbook_on_play_start", "play": {"name": "Contain"}, "tasks": []},
             {"_event": "v2_runner_on_ok", "task": {"name": "Contain the gateway"},
              "hosts": {"a": module_result("a", contained(fp="0000000a"), True)}},
             {"_event": "v2_runner_on_failed", "task": {"name": "Contain the gateway"},
              "hosts": {"b": module_result("b", refused(), False) | {"failed": True}}},
             {"_event": "v2_runner_on_unreachable", "task": {"name": "Contain the gateway"},
              "hosts": {"c": {"unreachable": True, "msg": "no route to host", "changed": False}}},
             {"_event": "v2_playbook_on_stats", "stats": {"a": {"unreachable": 0}, "c": {"unreachable": 1}}}]
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = fleet.merge([path])
    assert [(r["host"], r["state"]) for r in report["hosts"]] == [("a", "contained"), ("b", "failed"),
                                                                  ("c", "unreachable")]
    assert row(report, "c")["message"] == "no route to host", "the recap does not overwrite the task's own message"


def test_all_profiles_one_row_per_install(tmp_path: Path) -> None:
    env = envelope("contain", {"all_profiles": True, "incident": "20261206T1-x", "installs": [
        {"install": "main", "profile": "main", "state_dir": "/h/.openclaw-main", "exit_code": 0, "notes": [],
         "result": contained(fp="1a1a1a1a")["data"]},
        {"install": "rescue", "profile": "rescue", "state_dir": "/h/.openclaw-rescue", "exit_code": 3, "notes": [],
         "error": {"message": FOREIGN, "hint": FOREIGN_HINT, "code": 3}}]}, exit_code=3)
    report = fleet.merge([write(tmp_path / "family.json", env)])
    main, rescue = row(report, "family", "main"), row(report, "family", "rescue")
    assert main["state"] == "contained" and main["token_fingerprint"] == "1a1a1a1a"
    assert main["state_dir"] == "/h/.openclaw-main"
    assert rescue["state"] == "failed" and rescue["rc"] == 3 and rescue["message"] == FOREIGN
    assert report["summary"]["hosts"] == 1 and report["summary"]["installs"] == 2


def test_check_mode_predictions(tmp_path: Path) -> None:
    """contain.yml --check: the module result of a ``--dry-run``."""
    def plan(*done: bool) -> dict[str, Any]:
        steps = [{"id": f"s{i}", "already_done": d, "diff": ""} for i, d in enumerate(done)]
        return envelope("contain", {"status": "dry-run", "message": "dry run: nothing was changed", "steps": [],
                                    "plan": steps})
    write(tmp_path / "h1.contain.json", module_result("h1", plan(False, True), True, dry_run=True))
    write(tmp_path / "h2.contain.json", module_result("h2", plan(True, True), False, dry_run=True))
    report = fleet.merge([tmp_path])
    assert row(report, "h1")["state"] == "check: would contain" and row(report, "h1")["contained"] is False
    assert row(report, "h2")["state"] == "check: contained, nothing to do" and row(report, "h2")["contained"] is True
    assert row(report, "h1")["command"] == "contain --check"
    assert fleet.exit_code(report) == 0


def test_credentials_and_triage_findings_when_present(tmp_path: Path) -> None:
    env = envelope("credentials", {"credentials": [{"id": "gateway.auth.token", "status": "rotated"},
                                                   {"id": "channels.telegram.botToken", "status": "pending"},
                                                   {"id": "models.openai", "status": "pending"}],
                                   "findings": [{"level": "critical"}, {"level": "high"}, {"level": "high"}]})
    report = fleet.merge([write(tmp_path / "h1.json", env)])
    h1 = row(report, "h1")
    assert h1["credentials"] == {"total": 3, "rotated": 1, "pending": 2}
    assert h1["findings"] == {"source": "triage", "critical": 1, "high": 2}



def test_credentials_inventory_exposure_and_status_rows(tmp_path: Path) -> None:
    exposure = envelope("credentials", {"credentials": [
        {"id": "hooks.token", "exposed_in": [{"path": "/s/x.jsonl", "line": 2, "how": "transcript line"}]},
        {"id": "channels.telegram.botToken", "exposed_in": []}, {"id": "dotenv.OPENAI_API_KEY"}]})
    status = envelope("status", {"status": "contained", "credentials": {
        "count": 3, "to_rotate": [{"id": "hooks.token"}, {"id": "dotenv.OPENAI_API_KEY"}], "file": "x"}})
    report = fleet.merge([write(tmp_path / "h1.json", exposure), write(tmp_path / "h2.json", status)])
    assert row(report, "h1")["credentials"] == {"total": 3, "exposed": 1, "listed": 2}
    assert row(report, "h2")["credentials"] == {"inventoried": 3, "to rotate": 2}


# ---- inventory ----------------------------------------------------------------------------------

def test_inventory_forms(tmp_path: Path) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text("# fleet\nlonely ansible_host=10.0.0.9\n\n[gateways]\nweb[01:03] ansible_user=oc\n"
                   "db1 ansible_host=10.0.0.5  # the database box\n\n[gateways:vars]\nansible_user=openclaw\n\n"
                   "[all:children]\ngateways\n\n[lab]\nlonely\n")
    assert fleet.read_inventory(ini) == ["lonely", "web01", "web02", "web03", "db1"]
    listing = tmp_path / "inventory.json"
    listing.write_text(json.dumps({"_meta": {"hostvars": {"a": {}, "b": {}}}, "all": {"children": ["ungrouped", "g"]},
                                   "g": {"hosts": ["b", "c"]}}))
    assert fleet.read_inventory(listing) == ["a", "b", "c"]
    plain = tmp_path / "hosts.txt"
    plain.write_text("h1\n# down for maintenance\nh2\n")
    assert fleet.read_inventory(plain) == ["h1", "h2"]
    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  hosts:\n    a:\n")
    with pytest.raises(MoltirError) as err:
        fleet.read_inventory(yml)
    assert err.value.exit_code == 2 and "ansible-inventory -i" in err.value.hint


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("content, words", [
    ('{"changed": true, "msg": "some other module"}', "no moltir result"),
    ("not json at all\n", "not JSON"),
    ("", "no moltir result"),
])
def test_bad_input_is_exit_2_and_names_the_file(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "h1.json"
    path.write_text(content)
    with pytest.raises(MoltirError) as err:
        fleet.merge([path])
    assert err.value.exit_code == 2 and str(path) in err.value.message and words in err.value.message


def test_missing_path_is_exit_2(tmp_path: Path) -> None:
    with pytest.raises(MoltirError) as err:
        fleet.merge([tmp_path / "nope.json"])
    assert err.value.exit_code == 2 and "no such file" in err.value.message


# ---- rendering ----------------------------------------------------------------------------------

def test_render_text_and_markdown(tmp_path: Path) -> None:
    write(tmp_path / "h1.contain.json", module_result("h1", contained(fp="aaaa1111", critical=1), True))
    write(tmp_path / "h2.contain.json", module_result("h2", refused(), False))
    write(tmp_path / "h1.evidence.json", module_result("h1", exported("ee" * 32), True, verified=True))
    report = fleet.merge([tmp_path], inventory=["h1", "h2", "h9"])
    text = fleet.render_text(report)
    lines = text.splitlines()
    assert lines[0] == ("moltir fleet report: 2 host(s) reported (2 install(s)), 1 contained, 1 failed, "
                        "1 did not report")
    header = lines[2]
    assert header.split() == ["HOST", "PROFILE", "STATE", "CONTAINED", "TOKEN", "CREDENTIALS", "FINDINGS", "CASE",
                              "EVIDENCE", "SHA-256"]
    h1 = next(line for line in lines if line.startswith("h1 "))
    assert "contained" in h1 and "aaaa1111" in h1 and "ee" * 32 + " (verified)" in h1 and "1 critical" in h1
    assert header.index("TOKEN") == h1.index("aaaa1111"), "columns align"
    assert "did not report: h9" in text
    assert f"h2 [default] contain rc 3: {FOREIGN} (hint: {FOREIGN_HINT})" in text
    md = fleet.render_markdown(report)
    assert md.startswith("## moltir fleet report:")
    assert "| h1 | default | contained | yes | `aaaa1111` |" in md
    assert f"`{'ee' * 32} (verified)`" in md
    assert "**Did not report:** h9" in md and "- h2 [default] contain rc 3:" in md


def test_rendering_escapes_what_hosts_control(tmp_path: Path) -> None:
    """Host names and messages come from files anyone on a host could shape: no terminal escapes, no broken
    Markdown table."""
    env = envelope("contain", {"message": "x"}, exit_code=1,
                   errors=[{"message": "evil \x1b[2J| cell\nnext", "hint": "", "code": "step_failed"}])
    write(tmp_path / "h1.json", module_result("bad\x1b]0;title\x07|host", env, False))
    report = fleet.merge([tmp_path / "h1.json"])
    text, md = fleet.render_text(report), fleet.render_markdown(report)
    for out in (text, md):
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b[2J" in out
    table_lines = [line for line in md.splitlines() if line.startswith("| bad")]
    assert len(table_lines) == 1 and table_lines[0].count(" | ") == len(fleet._COLUMNS) - 1


def test_report_json_is_serialisable_and_carries_no_token(tmp_path: Path) -> None:
    write(tmp_path / "h1.json", contained(fp="aaaa1111"))
    report = fleet.merge([tmp_path / "h1.json"])
    again = json.loads(json.dumps(report))
    assert again["schema"] == "moltir.fleet/1" and again["hosts"][0]["token_fingerprint"] == "aaaa1111"
    assert set(again["hosts"][0]) >= {"host", "profile", "state", "contained", "token_fingerprint", "credentials",
                                      "findings", "evidence", "case_id", "message", "errors", "runs", "sources"}
