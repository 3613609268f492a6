"""``moltir harden`` and ``moltir harden --undo`` against the real releases (2026.9.6, 2026.1.29), on a
deliberately weak config: open DMs (with the ``*`` wildcard), an open group policy, ``bind: "lan"``,
insecure Control UI auth (2026.1.29 only: 2026.9.6 rejects the key, "Unrecognized key"), a 0755 state dir,
and no exec approvals: defaults ``security: full``, ``ask: off``, ``askFallback: full`` in the place the
release keeps them (2026.1.29: ``~/.openclaw/exec-approvals.json``, written here in OpenClaw's format with
a socket token; 2026.9.6: the ``exec_approvals_config`` row of ``state/openclaw.sqlite``, written by its
own ``openclaw approvals set --stdin``, which adds the socket token). No audit check reads those defaults
on either release, so the test reads them back from the store, and undo must put back the file's bytes
and mode or the row's every column, the socket token with them (never printed by moltir).

The sandbox step: on 2026.9.6 the config selects ``agents.defaults.sandbox.backend: "podman"`` (the
release's native podman backend, docs/gateway/sandboxing/podman-backend.md) and a REAL rootful podman with a
private store (tests/harness/podman.py; ``CONTAINERS_CONF``/``CONTAINERS_STORAGE_CONF`` in the home's env, so
moltir's ``podman info``/``podman image inspect``, the audit and the gateway all see that store and not the
machine's) holds an offline ``podman import`` tagged ``openclaw-sandbox:bookworm-slim``: the step sets
``mode: "non-main"``, the gateway still starts and answers, and undo puts the bytes back. The store is
removed at teardown. On 2026.1.29 (no backend key; Docker only) the step is skipped with the reason: this
machine's ``docker`` CLI has no daemon.

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

import hashlib
import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.harness import podman
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.prereq import missing_prerequisite

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


SANDBOX_IMAGE = "openclaw-sandbox:bookworm-slim"  # OpenClaw's default agents.defaults.sandbox.docker.image


@contextmanager
def _sandbox_engine(home: OpenClawHome, root: Path) -> Iterator[podman.Engine | None]:
    """2026.9.6: a private rootful podman store holding the sandbox image (an offline import), selected
    by the config's ``agents.defaults.sandbox.backend: "podman"`` and put in the home's env (moltir, the
    audit and the gateway inherit it). Image, containers and store removed after; none on 2026.1.29."""
    if not home.release.current:
        yield None
        return
    if (reason := podman.missing()) is not None:
        missing_prerequisite(reason)
    text = home.config_path.read_text(encoding="utf-8")
    anchor = 'model: { primary: "fake/fake-model" },'
    assert text.count(anchor) == 1, "the harness config changed shape"
    home.config_path.write_text(text.replace(anchor, anchor + '\n      sandbox: { backend: "podman" },'),
                                encoding="utf-8")
    engine = podman.Engine(root)
    try:
        engine.setup()
        engine.build_skeleton_image(SANDBOX_IMAGE)
        home.env.update(engine.env())
        yield engine
        engine.podman("rmi", SANDBOX_IMAGE)
        assert not engine.podman("images", "-q").stdout.strip(), "images left in the private store"
    finally:
        for key in engine.env():
            home.env.pop(key, None)
        engine.cleanup()  # no container, process, mount or runc state of it left (else it fails)
        shutil.rmtree(root, ignore_errors=True)


WEAK_APPROVALS = {"security": "full", "ask": "off", "askFallback": "full"}
HARD_APPROVALS = {"security": "allowlist", "ask": "on-miss", "askFallback": "deny"}


def _approvals_db(home: OpenClawHome) -> Path:
    return home.state_dir / "state" / "openclaw.sqlite"


def _weaken_approvals(home: OpenClawHome, current: bool) -> str:
    """No exec approvals, where the release keeps them; returns the socket token (to scan for)."""
    if current:
        body = json.dumps({"version": 1, "defaults": WEAK_APPROVALS, "agents": {}})
        proc = home.run_openclaw("approvals", "set", "--stdin", input=body, timeout=240)
        assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-1000:]
        doc = _approvals(home)
        assert doc is not None and doc["defaults"] == WEAK_APPROVALS, "approvals set wrote elsewhere"
        return str(doc["socket"]["token"])
    token = "sockTok-" + hashlib.sha256(home.token.encode()).hexdigest()[:24]
    doc = {"version": 1, "socket": {"path": str(home.home / ".openclaw" / "exec-approvals.sock"), "token": token},
           "defaults": WEAK_APPROVALS, "agents": {"main": {"allowlist": [{"pattern": "/usr/bin/uptime"}]}}}
    path = home.home / ".openclaw" / "exec-approvals.json"
    path.write_text(json.dumps(doc, indent=4) + "\n", encoding="utf-8")  # not OpenClaw's layout: bytes must come back
    path.chmod(0o640)
    return token


def _approvals_state(home: OpenClawHome) -> Any:
    """The approvals document's store exactly: the file's bytes and mode, or the row's every column."""
    if home.release.current:
        with sqlite3.connect(f"file:{_approvals_db(home)}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT * FROM exec_approvals_config").fetchall()
    path = home.home / ".openclaw" / "exec-approvals.json"
    return (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) if path.exists() else None


def _approvals(home: OpenClawHome) -> dict[str, Any] | None:
    state = _approvals_state(home)
    if not state:
        return None
    raw = state[0][1] if home.release.current else state[0].decode()
    doc: dict[str, Any] = json.loads(raw)
    return doc


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
    return {"config": home.config_path.read_bytes(), "approvals": _approvals_state(home),
            "modes": {str(p): stat.S_IMODE(p.lstat().st_mode) for p in paths if p.exists()}}


def test_harden_dry_run_apply_audit_gateway_and_undo(openclaw_home: OpenClawHome, tmp_path: Path) -> None:
    home = openclaw_home
    with _sandbox_engine(home, tmp_path / "pm") as engine:
        _harden_apply_and_undo(home, tmp_path, engine)


def _harden_apply_and_undo(home: OpenClawHome, tmp_path: Path, engine: podman.Engine | None) -> None:
    current = home.release.current
    home.config_path.write_text(_weaken(home.config_path.read_text(), current), encoding="utf-8")
    home.state_dir.chmod(0o755)
    socket_token = _weaken_approvals(home, current)
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
    assert {(c["target"].rsplit(" ", 1)[-1], c["before"], c["after"]) for c in plan["exec-approvals"]["changes"]} \
        == {("defaults." + k, WEAK_APPROVALS[k], v) for k, v in HARD_APPROVALS.items()}
    if engine is None:
        assert plan["sandbox"]["summary"] == "sandbox: skipped" and "docker" in plan["sandbox"]["warnings"][0]
    else:  # the real podman answered and holds the image: the mode is planned, nothing refused
        assert '+' in plan["sandbox"]["diff"] and 'mode: "non-main"' in plan["sandbox"]["diff"], plan["sandbox"]
        assert not plan["sandbox"].get("warnings"), plan["sandbox"]
    assert _snapshot(home) == weak

    # --yes: every targeted finding gone from the REAL audit; the gateway starts and answers on its token
    run = _moltir(env, home.root, "harden", "--yes", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    result = moltir_json(run.stdout)
    statuses = [s["status"] for s in result["steps"]]
    sandboxed = engine is not None
    assert statuses == ["done"] * 4 + ["already" if current else "done", "done", "done",
                                       "done" if sandboxed else "skipped", "done"], statuses
    sandbox = result["steps"][-2]
    if sandboxed:
        assert home.read_config()["agents"]["defaults"]["sandbox"] == {"backend": "podman", "mode": "non-main"}
    else:
        assert "sandbox mode not set: docker" in sandbox["summary"], sandbox  # the reason, in the result
    doc = _approvals(home)
    assert doc is not None and doc["defaults"] == HARD_APPROVALS and doc["socket"]["token"] == socket_token
    assert socket_token not in run.stdout + run.stderr + dry.stdout + dry.stderr
    for f in (tmp_path / "moltir-home").rglob("*"):  # cases, journals, logs: only the pre-image may hold it
        if f.is_file() and "preimage" not in f.parts:
            assert socket_token.encode() not in f.read_bytes(), f"the socket token leaked into {f}"
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
