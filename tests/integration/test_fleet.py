"""A fleet contained with real Ansible (ansible-core) over real SSH: the moltir.openclaw collection.

Three hosts on this machine (tests/harness/fleet.py): each a network namespace with its own sshd, user, HOME,
private keyring and real OpenClaw 2026.9.6 gateway. h1 and h2 run their gateways as their own users; h3's
gateway was started by someone else, as root ("sudo openclaw gateway run"), so moltir, which runs as h3's
user, must refuse to signal it (exit 3, nothing changed). The collection is built and installed with
ansible-galaxy; the playbooks run by their collection names. In order (one fleet for the module; each phase a
test, a failed phase skips the later ones):

1. ``contain.yml --check --diff``: h1 and h2 "changed" with their masked config diffs shown, h3's failure
   predicted with moltir's message, and nothing changed on any host.
2. ``contain.yml``: all three run in parallel (their moltir runs overlap in time): h1 and h2 contained, h3
   fails alone with moltir's
   message; its gateway runs on, untouched.
3. ``contain.yml`` again: h1 and h2 ``changed: false``; h3 fails the same way.
4. h2's gateway comes back (someone starts it again, on its new token) and h3 is put right (the root
   gateway stopped, its files given back, its gateway started as its user): h2 and h3 ``changed: true``,
   h1 ``changed: false``; all three contained.
5. ``evidence.yml``: each host's case exported, fetched, SHA-256 verified on the controller; ad-hoc
   ``moltir.openclaw.status`` with the tree callback.
6. ``moltir.commands.fleet.merge`` over the saved results shows all of it, and h4 (in the inventory, never
   reached) under "did not report".
7. ``restore.yml``: every gateway back, on its NEW token (the old one refused), DM policies as before; a
   second restore reports ``changed: false``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import py_compile
import re
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import json5
import pytest
from tests.harness import fleet as harness
from tests.harness.fleet import RELEASE_ID, Fleet, FleetHost
from tests.harness.prereq import missing_prerequisite
from tests.harness.risk import open_dm_risks

from moltir.commands import fleet as report
from moltir.engine import runbook as rbmod

F = TypeVar("F", bound=Callable[..., Any])
HOSTS = 3
FOREIGN = "runs as root, not as the user moltir runs as"
RECAP = re.compile(r"^(h\d+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
KEYRING_ITEMS = ("import secretstorage\nfrom contextlib import closing\n"
                 "with closing(secretstorage.dbus_init()) as c:\n"
                 "    print(len(list(secretstorage.get_default_collection(c).get_all_items())))\n")
COLLECTION = harness.COLLECTION_SRC
# the hosts' configs have open DMs: the restore playbook accepts the audit check that flags them
ACCEPT = json.dumps({"moltir_accept_risk": list(open_dm_risks(RELEASE_ID))})
MODULES = ("contain", "restore", "status", "drill", "evidence_fetch")
CONTAIN_STEPS = [s["id"] for s in json5.loads(rbmod.resolve("contain").read_text(encoding="utf-8"))["steps"]]


class State:
    broken: str = ""
    pre: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}


STATE = State()


def phase(fn: F) -> F:
    """An ordered phase: skipped once an earlier one failed (they build on each other)."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if STATE.broken:
            pytest.skip(f"an earlier phase failed: {STATE.broken}")
        try:
            return fn(*args, **kwargs)
        except BaseException:
            STATE.broken = fn.__name__
            raise
    return run  # type: ignore[return-value]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    reason = harness.missing()
    if reason:
        missing_prerequisite(reason)
    t0 = time.monotonic()
    fl = Fleet(hosts=HOSTS).setup()
    try:
        fl.install_collection()
        h3 = fl.hosts[2]
        errors: list[BaseException] = []

        def foreign() -> None:
            try:
                fl.start_gateway(h3, as_root=True, timeout=420)
            except BaseException as exc:
                errors.append(exc)
        t = threading.Thread(target=foreign)
        t.start()
        fl.start_gateways(fl.hosts[:2])
        t.join()
        if errors:
            raise errors[0]
        STATE.timings[f"fleet setup ({HOSTS} hosts, gateways ready)"] = time.monotonic() - t0
        yield fl
    finally:
        notes = fl.teardown()
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        for h in fl.hosts:
            assert h.uid < 0 or not harness.procs_of_uid(h.uid), f"{h.user}'s processes survived the teardown"
            assert h.netns not in netns, f"{h.netns} survived the teardown"
        print("\nfleet timings:", json.dumps({k: round(v, 1) for k, v in STATE.timings.items()}, indent=1))
        if notes:
            print("fleet teardown notes:", notes)


# ---- helpers --------------------------------------------------------------------------------------

def recap(out: str) -> dict[str, dict[str, int]]:
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))} for m in RECAP.finditer(out)}


def play(fl: Fleet, name: str, results: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run a shipped playbook with its results saved under ctl/results/RESULTS; (process, {host: result})."""
    d = fl.results / results
    d.mkdir(exist_ok=True)
    t0 = time.monotonic()
    proc = fl.playbook(name, "-e", f"moltir_results_dir={d}", *args)
    STATE.timings[f"{results} ({name}.yml {' '.join(args)})".strip()] = time.monotonic() - t0
    (fl.log_dir / f"{results}.out").write_text(proc.stdout + proc.stderr)
    got = {p.name.split(".")[0]: json.loads(p.read_text()) for p in d.glob(f"*.{name}.json")}
    return proc, got


def keyring_items(fl: Fleet, h: FleetHost) -> int:
    proc = fl.ssh(h, shlex.join([str(fl.venv / "bin" / "python"), "-c", KEYRING_ITEMS]))
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.strip())


def keyring_token(fl: Fleet, h: FleetHost, entry: str) -> str:
    """The token moltir stored (``moltir/gateway-token:KEY``), read as the host's user over SSH."""
    service, _, username = entry.partition("/")
    code = "import keyring, sys; print(keyring.get_password(sys.argv[1], sys.argv[2]) or '')"
    proc = fl.ssh(h, shlex.join([str(fl.venv / "bin" / "python"), "-c", code, service, username]))
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    return proc.stdout.strip()


def config_token(fl: Fleet, h: FleetHost) -> str:
    """The token the host's config gives its gateway now: plaintext, or moltir's SecretRef read from the
    host's keyring (``moltir/<id>``)."""
    cfg = json5.loads(h.oc.config_path.read_text())
    token = cfg["gateway"]["auth"]["token"]
    return token if isinstance(token, str) else keyring_token(fl, h, f"moltir/{token['id']}")


def rotate_entry(result: dict[str, Any]) -> str:
    steps = result["moltir"]["data"]["steps"]
    return str(next(s for s in steps if s["id"] == "rotate-token")["details"]["keyring_entry"])


def run_interval(case: Path, runbook: str) -> tuple[str, str]:
    """(start, end) timestamps of the last run of ``runbook`` in a case's journal."""
    records = [json.loads(line) for line in (case / "journal.jsonl").read_text().splitlines() if line.strip()]
    start = [r["ts"] for r in records if r.get("event") == "run.start" and r.get("runbook") == runbook][-1]
    end = [r["ts"] for r in records if r.get("event") == "run.done" and r.get("runbook") == runbook][-1]
    return start, end


def dm_values(h: FleetHost) -> dict[str, Any]:
    cfg = json5.loads(h.oc.config_path.read_text())
    out = {}
    for cid, ch in (cfg.get("channels") or {}).items():
        out[cid] = ch.get("dmPolicy", (ch.get("dm") or {}).get("policy"))
        for aid, acct in (ch.get("accounts") or {}).items():
            out[f"{cid}.{aid}"] = acct.get("dmPolicy", (acct.get("dm") or {}).get("policy"))
    return out


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:8]


# ---- the collection itself (no fleet needed) -----------------------------------------------------------

def test_collection_modules_compile_and_document_every_option(tmp_path: Path) -> None:
    """``ansible-test sanity``-style basics, offline: every plugin compiles; ansible-doc renders every module
    (doc fragments resolved) and documents exactly the options its argument_spec takes; the examples and
    return docs are YAML."""
    if not harness.ansible_bin("ansible-doc").exists():
        missing_prerequisite("ansible-doc not found next to the test's python (pip install ansible-core)")
    for path in sorted((COLLECTION / "plugins").rglob("*.py")):
        py_compile.compile(str(path), doraise=True, cfile=str(tmp_path / "x.pyc"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION.parents[2]),
           "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.run([str(harness.ansible_bin("ansible-doc")), "--json",
                           *(f"moltir.openclaw.{m}" for m in MODULES)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    for name in MODULES:
        doc = docs[f"moltir.openclaw.{name}"]
        assert doc["doc"]["short_description"] and doc["examples"] and doc["return"], name
        documented = set(doc["doc"]["options"])
        spec = _argument_spec(COLLECTION / "plugins" / "modules" / f"{name}.py")
        assert documented == spec, f"{name}: documented {sorted(documented ^ spec)} differ from the argument_spec"
    for playbook in sorted((COLLECTION / "playbooks").glob("*.yml")):
        subprocess.run([str(harness.ansible_bin("ansible-playbook")), "--syntax-check", "-i", "localhost,",
                        str(playbook)], env=env, capture_output=True, text=True, timeout=120, check=True)


def _argument_spec(path: Path) -> set[str]:
    """The option names the module's AnsibleModule gets (its spec built by the collection's module_utils)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(COLLECTION.parents[2]))
    try:
        spec = importlib.util.spec_from_file_location(f"_moltir_mod_{path.stem}", path)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        captured: dict[str, Any] = {}

        class Capture(Exception):
            pass

        def fake(argument_spec: dict[str, Any], **_kw: Any) -> None:
            captured.update(argument_spec)
            raise Capture

        spec.loader.exec_module(mod)
        mod.AnsibleModule = fake
        with pytest.raises(Capture):
            mod.main()
        return set(captured)
    finally:
        sys.path.remove(str(COLLECTION.parents[2]))


# ---- the phases -------------------------------------------------------------------------------------------

@phase
def test_1_check_diff_changes_nothing_and_shows_the_diffs(fleet: Fleet) -> None:
    for h in fleet.hosts:
        STATE.pre[h.name] = {"sha": h.config_sha256(), "token": h.oc.token, "dms": dm_values(h),
                             "keyring": keyring_items(fleet, h)}
        assert h.cases() == [] and STATE.pre[h.name]["keyring"] == 0
    proc, results = play(fleet, "contain", "1-check", "--check", "--diff")
    out = proc.stdout + proc.stderr
    counts = recap(proc.stdout)
    assert proc.returncode == 2, out                       # h3's predicted failure
    for h in fleet.hosts[:2]:
        assert counts[h.name]["changed"] == 1 and counts[h.name]["failed"] == 0, counts
        assert f"--- {h.oc.config_path} (now)" in out and f"+++ {h.oc.config_path} (after)" in out
        assert results[h.name]["dry_run"] is True and results[h.name]["changed"] is True
        assert [p["already_done"] for p in results[h.name]["plan"]] == [False] * len(CONTAIN_STEPS)
    r3 = results["h3"]
    assert counts["h3"]["failed"] == 1 and r3["rc"] == 3 and FOREIGN in r3["msg"], json.dumps(r3)[:4000]
    assert '-      dmPolicy: "open",' in out and '+      dmPolicy: "disabled",' in out
    assert "# moltir step rotate-token (token.rotate)" in out and 'token: "<redacted>"' in out
    for h in fleet.hosts:
        assert h.oc.token not in out, f"{h.name}'s token printed"
        assert h.config_sha256() == STATE.pre[h.name]["sha"], f"{h.name}: config changed in check mode"
        assert h.token_status(h.oc.token) == 400, f"{h.name}: the gateway no longer runs on its token"
        assert h.cases() == [], f"{h.name}: check mode opened a case"
        assert keyring_items(fleet, h) == 0, f"{h.name}: check mode wrote to the keyring"


@phase
def test_2_contain_all_in_parallel_and_the_foreign_host_fails_alone(fleet: Fleet) -> None:
    proc, results = play(fleet, "contain", "2-contain", "-e", '{"moltir_reason": "fleet test: shared skill"}')
    out = proc.stdout + proc.stderr
    counts = recap(proc.stdout)
    assert proc.returncode == 2, out
    good, h3 = fleet.hosts[:2], fleet.hosts[2]
    for h in good:
        assert counts[h.name] == {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0}, counts
        r = results[h.name]
        assert r["changed"] is True and r["contained"] is True and r["rc"] == 0 and r["status"] == "ok"
        assert set(r["steps"].values()) == {"done"}
        assert not h.port_open(), f"{h.name}: gateway still listening"
        assert set(dm_values(h).values()) <= {"disabled", None}, dm_values(h)
        token = keyring_token(fleet, h, rotate_entry(r))
        assert token != h.oc.token and r["token_fingerprint"] == fingerprint(token)
        assert fleet.moltir_json(h, "status")["data"]["status"] == "contained"
    # in parallel: every contain run started before any of them finished
    intervals = [run_interval(h.cases()[-1], "contain") for h in good]
    assert max(s for s, _ in intervals) < min(e for _, e in intervals), intervals
    STATE.timings["2-contain: slowest host's moltir run (journal)"] = max(_secs(e) - _secs(s) for s, e in intervals)
    # h3: moltir refuses to signal another user's gateway (exit 3, its message and hint); the runbook's
    # fallback still closed the DMs (contain.json5: a stop that fails must not leave the bot open; whether the
    # token rotation holds on a gateway moltir cannot reach depends on how its release re-reads it), and the
    # run ends failed, not contained
    r3 = results["h3"]
    assert counts["h3"]["failed"] == 1 and r3["failed"] is True and r3["rc"] == 3 and r3["contained"] is False
    assert FOREIGN in r3["msg"] and "nothing was signalled" in r3["msg"] and "hint:" in r3["msg"]
    assert "fatal: [h3]: FAILED!" in out and FOREIGN in out
    assert r3["steps"]["stop-gateway"] == "failed" and r3["steps"]["disable-dms"] == "done", r3["steps"]
    assert set(dm_values(h3).values()) <= {"disabled", None} and h3.port_open(), "h3's gateway was signalled"


def _secs(ts: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@phase
def test_3_second_run_reports_changed_false(fleet: Fleet) -> None:
    proc, results = play(fleet, "contain", "3-again")
    counts = recap(proc.stdout)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for h in fleet.hosts[:2]:
        assert counts[h.name]["changed"] == 0 and counts[h.name]["failed"] == 0, counts
        assert results[h.name]["changed"] is False and results[h.name]["status"] == "noop"
        assert "nothing to do" in results[h.name]["msg"]
    assert counts["h3"]["failed"] == 1 and FOREIGN in results["h3"]["msg"]


@phase
def test_4_a_gateway_that_came_back_and_the_fixed_host_report_changed(fleet: Fleet) -> None:
    h2, h3 = fleet.hosts[1], fleet.hosts[2]
    fleet.stop_gateway(h3)                                   # the admin puts h3 right: its gateway as its user
    harness.chown_tree(h3.root, h3.uid, h3.gid)
    tokens = {h.name: config_token(fleet, h) for h in (h2, h3)}
    errors: list[BaseException] = []

    def start(h: FleetHost) -> None:                          # h2: someone starts it again, on its new token
        try:
            fleet.start_gateway(h, token=tokens[h.name])
        except BaseException as exc:
            errors.append(exc)
    threads = [threading.Thread(target=start, args=(h,)) for h in (h2, h3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    proc, results = play(fleet, "contain", "4-came-back")
    counts = recap(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {h: c["changed"] for h, c in counts.items()} == {"h1": 0, "h2": 1, "h3": 1}, counts
    assert "stop-gateway" in results["h2"]["regressed"] and results["h2"]["steps"]["stop-gateway"] == "done"
    assert results["h3"]["status"] == "ok" and results["h3"]["contained"] is True
    for h in fleet.hosts:
        assert not h.port_open() and fleet.moltir_json(h, "status")["data"]["status"] == "contained", h.name


@phase
def test_5_evidence_fetched_and_verified_on_the_controller(fleet: Fleet) -> None:
    dest = fleet.ctl / "evidence"
    proc, results = play(fleet, "evidence", "5-evidence", "-e", f"moltir_evidence_dir={dest}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for h in fleet.hosts:
        r = results[h.name]
        local = Path(r["dest"])
        assert local.parent == dest / h.name and local.name == f"{r['case_id']}.tar.gz"
        assert local.stat().st_mode & 0o077 == 0 and local.parent.stat().st_mode & 0o077 == 0
        assert hashlib.sha256(local.read_bytes()).hexdigest() == r["sha256"] and r["verified"] is True
        assert r["remote_removed"] is True and not Path(r["remote_tmp_dir"]).exists()
        custody = (h.cases()[-1] / "custody.jsonl").read_text()
        assert r["sha256"] in custody and "verified there" in custody
    again, _ = play(fleet, "evidence", "5-evidence-again", "-e", f"moltir_evidence_dir={dest}")
    assert {c["changed"] for c in recap(again.stdout).values()} == {0}, "an identical archive is not fetched twice"
    tree = fleet.results / "5-tree"
    adhoc = fleet.ansible("openclaw", "-m", "moltir.openclaw.status", "-t", str(tree))
    assert adhoc.returncode == 0, adhoc.stdout + adhoc.stderr
    assert sorted(p.name for p in tree.iterdir()) == ["h1", "h2", "h3"]
    # become: the module runs moltir as root (sudo) and `user` names the install it acts on (and the
    # moltir state it reads: that user's cases). Root's PATH has no openclaw here, so the release comes
    # from the case's journal and every effect re-checks as the user's own status does (read-only).
    h1 = fleet.hosts[0]
    fleet.allow_sudo(h1)
    tree = fleet.results / "5-become"
    become = fleet.ansible("h1", "-b", "-m", "moltir.openclaw.status", "-t", str(tree),
                           "-a", f"user={h1.user} moltir_bin={fleet.bin_dir / 'moltir'}")
    assert become.returncode == 0, become.stdout + become.stderr
    as_root, as_user = json.loads((tree / "h1").read_text()), fleet.moltir_json(h1, "status")["data"]
    assert as_root["moltir"]["data"]["install"]["state_dir"] == str(h1.oc.state_dir)
    assert as_root["state"] == as_user["status"] == "contained", json.dumps(as_root["effects"])
    assert as_root["case_id"] == as_user["case"]["id"]
    assert set(as_root["effects"].values()) == {"verified now"}, as_root["effects"]


@phase
def test_6_fleet_report_shows_all_of_it(fleet: Fleet) -> None:
    hosts_all = fleet.ctl / "hosts-all.ini"
    hosts_all.write_text(fleet.inventory.read_text().replace("[openclaw:vars]", "h4 ansible_host=192.0.2.250\n\n"
                                                                              "[openclaw:vars]"))
    inventory = report.read_inventory(hosts_all)
    assert inventory == ["h1", "h2", "h3", "h4"]
    # the run where h3 failed alone
    first = report.merge([fleet.results / "2-contain"], inventory)
    rows = {r["host"]: r for r in first["hosts"]}
    assert [rows[h]["state"] for h in ("h1", "h2", "h3")] == ["contained"] * 2 + ["failed"]
    assert FOREIGN in rows["h3"]["message"] and rows["h3"]["rc"] == 3 and rows["h3"]["contained"] is False
    assert first["missing"] == ["h4"] and report.exit_code(first) == 6
    # everything, in order
    dirs = ["2-contain", "3-again", "4-came-back", "5-evidence", "5-tree"]
    full = report.merge([fleet.results / d for d in dirs], inventory)
    text, md = report.render_text(full), report.render_markdown(full)
    (fleet.log_dir / "fleet-report.txt").write_text(text)
    print("\n" + text + "\n" + md)
    rows = {r["host"]: r for r in full["hosts"]}
    assert set(rows) == {"h1", "h2", "h3"} and full["missing"] == ["h4"]
    evidence = {p.name.split(".")[0]: json.loads(p.read_text())
                for p in (fleet.results / "5-evidence").glob("*.json")}
    for h in fleet.hosts:
        row = rows[h.name]
        assert row["state"] == "contained" and row["contained"] is True and row["profile"] == "default"
        token = config_token(fleet, h)
        assert token != STATE.pre[h.name]["token"], f"{h.name}: not rotated"
        assert row["token_fingerprint"] == fingerprint(token), h.name
        assert token not in text + md + json.dumps(full), f"{h.name}: a token in the report"
        assert row["evidence"]["sha256"] == evidence[h.name]["sha256"] and row["evidence"]["verified"] is True
        assert row["findings"]["source"].startswith("audit") and "critical" in row["findings"]
        assert row["credentials"] is not None
        assert f"{h.name} " in text and evidence[h.name]["sha256"] in md
    assert [r["rc"] for r in rows["h3"]["runs"] if r["command"] == "contain"] == [3, 3, 0]
    assert "did not report: h4" in text and "**Did not report:** h4" in md
    assert full["summary"]["contained"] == 3 and report.exit_code(full) == 6   # h4 never reported


@phase
def test_7_restore_brings_all_back_on_their_new_tokens(fleet: Fleet) -> None:
    runbook = fleet.slow_start_restore_runbook()
    proc, results = play(fleet, "restore", "7-restore", "-e", f"moltir_runbook={runbook}", "-e", ACCEPT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert {c["changed"] for c in recap(proc.stdout).values()} == {1}
    for h in fleet.hosts:
        new = config_token(fleet, h)
        assert h.port_open(), f"{h.name}: gateway not back"
        assert h.token_status(new) == 400, f"{h.name}: the new token is refused"
        assert h.token_status(STATE.pre[h.name]["token"]) == 401, f"{h.name}: the old token still works"
        assert dm_values(h) == STATE.pre[h.name]["dms"], f"{h.name}: DM policies differ from before"
        assert results[h.name]["token_fingerprint"] == fingerprint(new)
        assert fleet.moltir_json(h, "status")["data"]["status"] == "restored"
        assert new not in out
    again, _ = play(fleet, "restore", "7-restore-again", "--limit", "h1", "-e", f"moltir_runbook={runbook}",
                    "-e", ACCEPT)
    assert again.returncode == 0 and recap(again.stdout)["h1"]["changed"] == 0, again.stdout   # idempotent
    final = report.merge([fleet.results / d for d in ("2-contain", "4-came-back", "5-evidence", "7-restore")])
    assert {r["state"] for r in final["hosts"]} == {"restored"} and report.exit_code(final) == 0
