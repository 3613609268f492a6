"""The harden steps ``exec-approvals`` and ``sandbox`` on small real files, a real SQLite store with
OpenClaw's table, and small fake engine/openclaw executables: each edit, its undo exactly, the refusals,
the secret (the approvals socket token) never in a result or the journal, and the capability row pinned
against the installed packages' docs."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.unit.installed import installed_package

from moltir.actions.harden import HardenConfig, HardenExecApprovals, HardenUndo, exec_store
from moltir.errors import EXIT_VERIFY, MoltirError
from moltir.openclaw import capabilities as capmod
from moltir.openclaw import discover

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.unit.releasefix import CURRENT, EARLY, pin  # noqa: E402
from tests.unit.test_harden import WEAK, Env  # noqa: E402

TOKEN = "sockTok-ZZZZ9999secret"
HARD = {"security": "allowlist", "ask": "on-miss", "askFallback": "deny"}
# 2026.9.6 dist/openclaw-state-db-read-connection-*.mjs (OPENCLAW_STATE_SCHEMA_SQL), verbatim
SCHEMA = """CREATE TABLE exec_approvals_config (
  config_key TEXT NOT NULL PRIMARY KEY,
  raw_json TEXT NOT NULL,
  socket_path TEXT,
  has_socket_token INTEGER NOT NULL,
  default_security TEXT,
  default_ask TEXT,
  default_ask_fallback TEXT,
  auto_allow_skills INTEGER,
  agent_count INTEGER NOT NULL,
  allowlist_count INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT"""
WEAK_DOC = {"version": 1, "socket": {"path": "/x/exec-approvals.sock", "token": TOKEN},
            "defaults": {"security": "full", "ask": "off", "askFallback": "full", "autoAllowSkills": True},
            "agents": {"main": {"security": "full", "allowlist": [{"pattern": "/usr/bin/uptime"}]}}}


def _file(env: Env) -> Path:
    return Path(env.install.home) / ".openclaw" / "exec-approvals.json"


def _write_weak_file(env: Env, mode: int = 0o640) -> bytes:
    path = _file(env)
    path.parent.mkdir(exist_ok=True)
    raw = json.dumps(WEAK_DOC, indent=4).encode() + b"\n"  # not OpenClaw's layout: undo must give these bytes
    path.write_bytes(raw)
    path.chmod(mode)
    return raw


def _no_secret(env: Env, *results: Any) -> None:
    for r in results:
        assert TOKEN not in json.dumps(dataclasses.asdict(r), default=str)
    for f in env.case.dir.rglob("*"):
        if f.is_file() and "preimage" not in f.parts:
            assert TOKEN.encode() not in f.read_bytes(), f


def test_file_defaults_hardened_others_kept_and_undo_gives_bytes_and_mode(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    raw = _write_weak_file(env)
    plan = HardenExecApprovals().plan(env.ctx(HardenExecApprovals(), dry=True))
    assert {(c.target.rsplit(" ", 1)[-1], c.before, c.after) for c in plan.changes} == {
        ("defaults.security", "full", "allowlist"), ("defaults.ask", "off", "on-miss"),
        ("defaults.askFallback", "full", "deny")}
    assert _file(env).read_bytes() == raw
    res = env.run(HardenExecApprovals())
    doc = json.loads(_file(env).read_text())
    assert doc["defaults"] == {**HARD, "autoAllowSkills": True}
    assert doc["socket"] == WEAK_DOC["socket"] and doc["agents"] == WEAK_DOC["agents"]
    assert stat.S_IMODE(_file(env).stat().st_mode) == 0o640
    assert _file(env).read_text() == json.dumps(doc, indent=2) + "\n"  # OpenClaw's own layout
    _no_secret(env, res)
    assert env.run(HardenExecApprovals()).status == "already"
    hardened = _file(env).read_bytes()
    plan = HardenUndo().plan(env.ctx(HardenUndo(), dry=True))
    assert plan.summary == "put back 0 config file(s) and the exec approvals and 0 mode(s)"
    assert _file(env).read_bytes() == hardened
    undo = env.undo()
    assert _file(env).read_bytes() == raw and stat.S_IMODE(_file(env).stat().st_mode) == 0o640
    _no_secret(env, undo)


def test_absent_file_is_created_private_and_removed_by_undo(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    env.run(HardenExecApprovals())
    assert json.loads(_file(env).read_text()) == {"version": 1, "defaults": HARD, "agents": {}}
    assert stat.S_IMODE(_file(env).stat().st_mode) == 0o600
    env.undo()
    assert not _file(env).exists()


def test_the_state_dir_file_between_the_home_file_and_the_store(tmp_path: Path) -> None:
    env = Env(tmp_path, release="2026.7.35")
    env.run(HardenExecApprovals())
    assert (env.state / "exec-approvals.json").is_file() and not _file(env).exists()


def test_stricter_values_stay(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    _file(env).parent.mkdir()
    _file(env).write_text(json.dumps({"version": 1, "defaults": {"security": "deny", "ask": "always"}}))
    res = env.run(HardenExecApprovals())
    assert res.details["changed"] == ["defaults.askFallback"]
    assert json.loads(_file(env).read_text())["defaults"] == {"security": "deny", "ask": "always",
                                                               "askFallback": "deny"}


@pytest.mark.parametrize("text", ["{not json", '{"version": 2, "defaults": {}}', '{"version": 1, "defaults": []}'])
def test_a_document_openclaw_would_not_read_is_left_alone(tmp_path: Path, text: str) -> None:
    env = Env(tmp_path, release=EARLY)
    _file(env).parent.mkdir()
    _file(env).write_text(text)
    plan = HardenExecApprovals().plan(env.ctx(HardenExecApprovals(), dry=True))
    assert plan.summary == "exec approvals: refused" and "version 1" in plan.warnings[0]
    res = env.run(HardenExecApprovals())
    assert res.status == "skipped" and _file(env).read_text() == text


def test_undo_leaves_approvals_edited_since_unless_forced(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    raw = _write_weak_file(env)
    env.run(HardenExecApprovals())
    edited = _file(env).read_text().replace('"on-miss"', '"always"')
    _file(env).write_text(edited)
    res = env.undo()
    assert res.status == "skipped" and any("exec approvals" in w for w in res.warnings)
    assert _file(env).read_text() == edited
    env.undo(force=True)
    assert _file(env).read_bytes() == raw


def _store(env: Env, row_doc: dict[str, Any] | None) -> Path:
    db = env.state / "state" / "openclaw.sqlite"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute(SCHEMA)
        if row_doc is not None:
            conn.execute("INSERT INTO exec_approvals_config VALUES ('current', ?, '/x/s', 1, 'full', 'off', 'full', "
                         "1, 1, 1, 1700000000000)", (json.dumps(row_doc, indent=2) + "\n",))
    return db


def _rows(db: Path) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM exec_approvals_config").fetchall()


def test_store_row_hardened_with_its_columns_and_put_back_exactly(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    db = _store(env, WEAK_DOC)
    before = _rows(db)
    res = env.run(HardenExecApprovals())
    ((key, raw, sock, has_tok, sec, ask, fallback, auto, agents, allow, _at),) = _rows(db)
    assert (key, sock, has_tok, sec, ask, fallback, auto, agents, allow) == (
        "current", "/x/s", 1, "allowlist", "on-miss", "deny", 1, 1, 1)
    assert json.loads(raw)["socket"]["token"] == TOKEN and json.loads(raw)["defaults"]["ask"] == "on-miss"
    assert not _file(env).exists() and not (env.state / "exec-approvals.json").exists()
    _no_secret(env, res)
    env.undo()
    assert _rows(db) == before


def test_store_without_a_row_gets_one_and_undo_deletes_it(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    db = _store(env, None)
    env.run(HardenExecApprovals())
    ((_k, raw, _s, has_tok, sec, ask, fallback, *_rest),) = _rows(db)
    assert json.loads(raw)["defaults"] == HARD and (has_tok, sec, ask, fallback) == (0, "allowlist", "on-miss", "deny")
    env.undo()
    assert _rows(db) == []


def test_no_store_yet_and_no_binary_to_create_it_is_skipped_with_the_reason(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    plan = HardenExecApprovals().plan(env.ctx(HardenExecApprovals(), dry=True))
    assert "does not exist yet" in plan.warnings[0] and len(plan.changes) == 3
    res = env.run(HardenExecApprovals())
    assert res.status == "skipped" and "run OpenClaw once" in res.summary
    assert not (env.state / "state").exists()


def _fake_openclaw(tmp_path: Path, defaults: dict[str, str]) -> Path:
    script = tmp_path / "openclaw"
    body = json.dumps({"path": "x", "file": {"version": 1, "socket": {"token": TOKEN}, "defaults": defaults}})
    script.write_text(f"#!/bin/sh\n[ \"$1 $2\" = 'approvals get' ] || exit 9\necho 'a notice first'\necho '{body}'\n")
    script.chmod(0o755)
    return script


def test_verify_reads_back_through_the_release_cli(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    env.install = pin(dataclasses.replace(env.install, binary=_fake_openclaw(tmp_path, HARD)), EARLY)
    res = env.run(HardenExecApprovals())
    assert res.status == "done"
    env.install = pin(dataclasses.replace(env.install, binary=_fake_openclaw(tmp_path, {"security": "full"})), EARLY)
    with pytest.raises(MoltirError) as err:
        HardenExecApprovals().verify(env.ctx(HardenExecApprovals()), res)
    assert err.value.exit_code == EXIT_VERIFY and "security, ask, askFallback" in err.value.message
    assert TOKEN not in err.value.message


# ---- sandbox ---------------------------------------------------------------------------------------------
def _engine(tmp_path: Path, name: str, info_rc: int, image_rc: int) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    script = bindir / name
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/{name}.calls\n"
                      f"case \"$1\" in info) [ {info_rc} = 0 ] || echo 'Cannot connect to the daemon' >&2; "
                      f"exit {info_rc};; image) exit {image_rc};; esac\nexit 3\n")
    script.chmod(0o755)
    return bindir


def _with_path(env: Env, bindir: Path | None, release: str) -> None:
    path = f"{bindir}:/nonexistent" if bindir else "/nonexistent"
    env.install = pin(dataclasses.replace(env.install, env={**env.install.env, "PATH": path}), release)


@pytest.mark.parametrize(("info_rc", "image_rc", "says"), [
    (None, 0, "docker: not found on PATH"),
    (1, 0, "docker is not usable here (Cannot connect to the daemon)"),
    (0, 1, "the sandbox image openclaw-sandbox:bookworm-slim is not in docker's store"),
])
def test_sandbox_is_skipped_with_the_reason_when_the_engine_is_not_usable(
        tmp_path: Path, info_rc: int | None, image_rc: int, says: str) -> None:
    env = Env(tmp_path, release=CURRENT)
    _with_path(env, None if info_rc is None else _engine(tmp_path, "docker", info_rc, image_rc), CURRENT)
    plan = HardenConfig().plan(env.ctx(HardenConfig(), dry=True, setting="sandbox"))
    assert plan.summary == "sandbox: skipped" and says in plan.warnings[0], plan.warnings
    res = env.run(HardenConfig(), setting="sandbox")
    assert res.status == "skipped" and says in res.summary
    assert env.config.read_bytes() == env.original


def test_sandbox_mode_set_when_docker_and_its_image_are_there_and_undone(tmp_path: Path) -> None:
    env = Env(tmp_path, release=EARLY)
    _with_path(env, _engine(tmp_path, "docker", 0, 0), EARLY)
    res = env.run(HardenConfig(), setting="sandbox")
    assert res.status == "done" and env.data()["agents"]["defaults"]["sandbox"]["mode"] == "non-main"
    calls = (tmp_path / "docker.calls").read_text().splitlines()
    assert calls[:2] == ["info", "image inspect openclaw-sandbox:bookworm-slim"]
    assert env.run(HardenConfig(), setting="sandbox").status == "already"
    env.undo()
    assert env.config.read_bytes() == env.original


def test_podman_backend_only_where_the_release_drives_podman(tmp_path: Path) -> None:
    text = WEAK.replace("  tools: {", '  agents: { defaults: { sandbox: { backend: "podman", '
                                      'docker: { image: "my:img" } } } },\n  tools: {')
    (tmp_path / "a").mkdir()
    old = Env(tmp_path / "a", text, release="2026.7.35")
    _with_path(old, _engine(tmp_path / "a", "podman", 0, 0), "2026.7.35")
    assert "moltir checks only the local engines this release drives (docker)" in \
        old.run(HardenConfig(), setting="sandbox").summary
    (tmp_path / "b").mkdir()
    new = Env(tmp_path / "b", text, release=CURRENT)
    _with_path(new, _engine(tmp_path / "b", "podman", 0, 0), CURRENT)
    assert new.run(HardenConfig(), setting="sandbox").status == "done"
    assert (tmp_path / "b" / "podman.calls").read_text().splitlines()[1] == "image inspect my:img"


def test_a_sandbox_mode_already_on_is_left_alone_and_no_engine_is_asked(tmp_path: Path) -> None:
    text = WEAK.replace("  tools: {", '  agents: { defaults: { sandbox: { mode: "all" } } },\n  tools: {')
    env = Env(tmp_path, text, release=CURRENT)
    _with_path(env, _engine(tmp_path, "docker", 1, 1), CURRENT)
    assert env.run(HardenConfig(), setting="sandbox").status == "already"
    assert not (tmp_path / "docker.calls").exists()


def _documents_podman_backend(package: Path) -> bool:
    docs = package / "docs" / "gateway"
    texts = [p.read_text(encoding="utf-8") for p in [docs / "sandboxing.md", *docs.glob("sandboxing/*.md")]
             if p.is_file()]
    return any("`podman`" in t or 'backend: "podman"' in t for t in texts)


@pytest.mark.parametrize("version", ["2026.1.29", "2026.2.25", "2026.5.28", "2026.7.35", "2026.8.2", "2026.9.6"])
def test_sandbox_engine_row_matches_the_installed_package(version: str) -> None:
    package = installed_package(version)
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert ("podman" in caps.value("sandbox_local_engines")) is _documents_podman_backend(package)


def test_exec_approvals_places_per_release() -> None:
    install = discover(env={"HOME": "/h", "OPENCLAW_STATE_DIR": "/s", "PATH": "/nonexistent"})
    assert [exec_store.locate(pin(install, v)) for v in ("2026.1.29", "2026.6.6", "2026.8.1")] == [
        ("file", Path("/h/.openclaw/exec-approvals.json")), ("file", Path("/s/exec-approvals.json")),
        ("sqlite", Path("/s/state/openclaw.sqlite"))]


def test_no_store_yet_lets_the_release_create_it_then_writes_the_row(tmp_path: Path) -> None:
    env = Env(tmp_path, release=CURRENT)
    db = env.state / "state" / "openclaw.sqlite"
    fake = tmp_path / "openclaw"  # stands in for the release's CLI: 'approvals get' creates the store, reports the row
    fake.write_text(f"""#!{sys.executable}
import json, pathlib, sqlite3, sys
assert sys.argv[1:3] == ["approvals", "get"], sys.argv
db = pathlib.Path({str(db)!r})
db.parent.mkdir(exist_ok=True)
with sqlite3.connect(db) as conn:
    conn.execute({SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")!r})
    row = conn.execute("SELECT raw_json FROM exec_approvals_config").fetchone()
print(json.dumps({{"file": json.loads(row[0]) if row else {{"version": 1, "defaults": {{}}}}}}))
""")
    fake.chmod(0o755)
    env.install = pin(dataclasses.replace(env.install, binary=fake), CURRENT)
    res = env.run(HardenExecApprovals())
    assert res.status == "done" and json.loads(_rows(db)[0][1])["defaults"] == HARD
    env.undo()
    assert _rows(db) == []
