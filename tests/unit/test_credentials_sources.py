"""Shell histories of the gateway's user and the agent's workspace are exposure sources: the snapshot
copies them (``~/.bash_history``, ``~/.zsh_history``, ``~/.local/share/fish/fish_history``; the workspace
that ``agents.defaults.workspace`` names, else ``<state>/workspace``, to one folder down plus
``memory/``) and ``moltir credentials --case`` finds a credential's value in them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner
from tests.harness.envelope import moltir_json

from moltir import evidence
from moltir.cli import cli
from moltir.engine.case import Case
from moltir.openclaw import discover

HOOKS = "hooks-token-in-history-0123456789"
BOT = "123456:bot-token-in-workspace-ABCDEFGH"


def _within(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _snapshot(tmp_path: Path, home: Path, state: Path) -> Path:
    install = discover(env={"HOME": str(home), "OPENCLAW_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"})
    case = Case.create(tmp_path / "case", kind="contain", install_info=install.describe(), reason="")
    src = evidence.resolve_roots(install, journal=False)
    src = dataclasses.replace(src, roots=tuple(r for r in src.roots if _within(r.path, tmp_path)))
    evidence.snapshot(case, install, case.journal(), sources=src, gateway_running=False, progress=False)
    return case.dir


def _files(case: Path) -> dict[str, dict[str, str]]:
    return {f["source"]: f for f in json.loads((case / "manifest.json").read_text())["files"]}


def test_histories_and_the_configured_workspace_are_copied_and_searched(tmp_path: Path) -> None:
    home, state, ws = tmp_path / "home", tmp_path / "state", tmp_path / "agent-ws"
    _write(state / "openclaw.json", f'{{ hooks: {{ token: "{HOOKS}" }},'
                                    f' agents: {{ defaults: {{ workspace: "{ws}" }} }},'
                                    f' channels: {{ telegram: {{ botToken: "{BOT}" }} }} }}\n')
    bash = _write(home / ".bash_history", f"ls\ncurl -H 'X-Token: {HOOKS}' http://127.0.0.1:1/\n")
    zsh = _write(home / ".zsh_history", ": 1796616365:0;echo hi\n")
    fish = _write(home / ".local/share/fish/fish_history", f"- cmd: export TOKEN={HOOKS}\n  when: 1796616365\n")
    notes = _write(ws / "notes.txt", f"the bot token is {BOT}\n")
    one_down = _write(ws / "project" / ".env", f"TELEGRAM_BOT_TOKEN={BOT}\n")
    memory = _write(ws / "memory" / "2026" / "12-07.md", "nothing secret\n")
    deep = _write(ws / "project" / "node_modules" / "x" / "index.js", f"// {BOT}\n")
    _write(home / ".ssh" / "known_hosts", "not collected\n")
    case = _snapshot(tmp_path, home, state)
    files = _files(case)
    for path, cat in ((bash, "history"), (zsh, "history"), (fish, "history"), (notes, "workspace"),
                      (one_down, "workspace"), (memory, "workspace")):
        assert files[str(path)]["category"] == cat, path
    assert str(deep) not in files and str(home / ".ssh/known_hosts") not in files

    result = CliRunner().invoke(cli, ["credentials", "--case", str(case), "--json"])
    assert result.exit_code == 0, result.stdout
    assert HOOKS not in result.stdout and BOT not in result.stdout
    by_id = {c["id"]: c for c in moltir_json(result.stdout)["credentials"]}
    hooks = {(h["path"], h.get("line"), h["how"]) for h in by_id["hooks.token"]["exposed_in"]}
    assert hooks == {(str(bash), 2, "shell history line"), (str(fish), 1, "shell history line")}
    bot = {(h["path"], h["how"]) for h in by_id["channels.telegram.botToken"]["exposed_in"]}
    assert bot == {(str(notes), "agent workspace file line"), (str(one_down), "agent workspace file line")}


def test_the_default_workspace_is_the_state_dirs(tmp_path: Path) -> None:
    home, state = tmp_path / "home", tmp_path / "state"
    _write(state / "openclaw.json", "{}\n")
    notes = _write(state / "workspace" / "notes.txt", "x\n")
    prompt = _write(state / "workspace" / "AGENTS.md", "y\n")  # the state dir's own rule takes it first
    legacy = _write(home / ".openclaw" / "workspace" / "todo.txt", "z\n")  # 2026.1.x's default
    files = _files(_snapshot(tmp_path, home, state))
    assert files[str(notes)]["category"] == "workspace" and files[str(notes)]["root"] == "workspace"
    assert files[str(prompt)]["category"] == "persistence"
    assert files[str(legacy)]["root"] == "home-workspace"


APPROVAL_HOME = "exec-approval-socket-token-home-0123456789"
APPROVAL_SQL = "exec-approval-socket-token-sqlite-987654"


def test_exec_approval_socket_tokens_are_listed_without_their_value(tmp_path: Path) -> None:
    """2026.1.29 keeps the socket token in ~/.openclaw/exec-approvals.json (dist/infra/exec-approvals.js:
    DEFAULT_FILE, ``socket.token``); 2026.9.6 in state/openclaw.sqlite ``exec_approvals_config.raw_json``
    (row ``current``, dist/exec-approvals-sqlite-*.mjs)."""
    import sqlite3
    from contextlib import closing

    home, state = tmp_path / "home", tmp_path / "state"
    _write(state / "openclaw.json", "{}\n")
    approvals = _write(home / ".openclaw" / "exec-approvals.json", json.dumps(
        {"version": 1, "socket": {"path": str(home / ".openclaw/exec-approvals.sock"), "token": APPROVAL_HOME},
         "defaults": {}, "agents": {}}))
    (state / "state").mkdir()
    db = state / "state" / "openclaw.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE exec_approvals_config (config_key TEXT PRIMARY KEY, raw_json TEXT, "
                     "updated_at_ms INTEGER)")
        conn.execute("INSERT INTO exec_approvals_config VALUES ('current', ?, 0)",
                     (json.dumps({"version": 1, "socket": {"path": "/x.sock", "token": APPROVAL_SQL}}),))
        conn.commit()
    result = CliRunner().invoke(cli, ["credentials", "--json", "--state-dir", str(state)],
                                env={"HOME": str(home)})
    assert result.exit_code == 0, result.stdout
    assert APPROVAL_HOME not in result.stdout and APPROVAL_SQL not in result.stdout
    by_id = {c["id"]: c for c in moltir_json(result.stdout)["credentials"]}
    for cid, file, key in (("exec_approvals.socket.token", str(approvals), "socket.token"),
                           ("sqlite.state.exec_approvals_config[current].socket.token", str(db),
                            "exec_approvals_config config_key=current socket.token")):
        rec = by_id[cid]
        assert rec["kind"] == "exec_approval_token" and rec["location"] == {"file": file, "key": key}, rec
        assert rec["fingerprint"].startswith("hmac-sha256:") and rec["storage"] == "plaintext"
        assert rec["revocation"]["by"] == "local" and "stop the gateway" in rec["revocation"]["how"]
        assert "socket.token" in rec["revocation"]["how"] and rec["revocation"]["api"] is False
