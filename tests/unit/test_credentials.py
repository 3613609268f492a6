"""``moltir credentials``: every credential kind found in small fixture homes, no value in any output;
``credentials.inventory`` in a case; ``--case`` exposure over copied JSONL, logs, SQLite and backups."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from tests.harness.envelope import moltir_json

from moltir.cli import cli

V = {  # every planted value (each >= 8 characters, each unique)
    "gw": "gw-token-0123456789abcdef", "gwpw": "gw-password-zyxw9876", "remote": "remote-token-55554444",
    "hooks": "hooks-token-a1b2c3d4e5", "tg": "123456:tg-default-AAAAAAAA", "tgops": "654321:tg-ops-BBBBBBBBB",
    "tgfile": "999999:tg-file-CCCCCCCC", "discord": "discord-token-DDDDDDDD", "slackbot": "xoxb-slack-bot-EEEE",
    "slackapp": "xapp-slack-app-FFFF", "slacksign": "slack-signing-GGGGGG", "model": "sk-model-key-HHHHHHHH",
    "dotenv": "sk-dotenv-key-IIIIIIII", "profile": "sk-ant-profile-JJJJJJJ", "models": "sk-models-json-KKKKKK",
    "device": "device-token-LLLLLLLL", "unit": "sk-unit-env-MMMMMMMM", "include": "include-secret-NNNNNNN",
    "store": "sk-store-entry-OOOOOOO", "devsql": "device-sql-token-PPPPPP", "authsql": "sk-auth-sqlite-QQQQQQ",
    "deleted": "sk-deleted-entry-RRRRRR", "pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIS\n-----END",
    "svcenv": "xapp-service-env-SSSSSS", "idpem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIT\n-----END",
}

CONFIG = f"""// fixture
{{
  meta: {{ lastTouchedVersion: "2026.9.6" }},
  gateway: {{ mode: "local", auth: {{ token: "{V['gw']}", password: "{V['gwpw']}" }},
             remote: {{ token: "{V['remote']}" }} }},
  hooks: {{ token: "{V['hooks']}" }},
  models: {{ providers: {{ openai: {{ baseUrl: "https://api.openai.com/v1", apiKey: "{V['model']}" }},
                          envref: {{ apiKey: {{ source: "env", provider: "default", id: "OPENAI_API_KEY" }} }},
                          storeref: {{ apiKey: {{ source: "store", provider: "default",
                                                 id: "OPENAI_API_KEY" }} }} }} }},
  channels: {{
    telegram: {{ botToken: "{V['tg']}", maxTokens: 5,
                accounts: {{ ops: {{ botToken: "{V['tgops']}" }}, filed: {{ tokenFile: "TOKENFILE" }} }} }},
    discord: {{ token: "{V['discord']}" }},
    slack: {{ botToken: "{V['slackbot']}", appToken: "{V['slackapp']}", signingSecret: "{V['slacksign']}" }},
    matrix: {{ $include: "./matrix.json5" }},
  }},
}}
"""


def _home(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    token_file = tmp_path / "tg.token"
    token_file.write_text(V["tgfile"] + "\n")
    (state / "openclaw.json").write_text(CONFIG.replace("TOKENFILE", str(token_file)))
    (state / "matrix.json5").write_text(f'{{ accessToken: "{V["include"]}" }}')
    (state / ".env").write_text(f"OPENAI_API_KEY={V['dotenv']}\nLOG_LEVEL=debug\n")
    agent = state / "agents" / "main" / "agent"
    agent.mkdir(parents=True)
    (agent / "auth-profiles.json").write_text(json.dumps(
        {"version": 1, "profiles": {"anthropic:default": {"type": "api_key", "provider": "anthropic",
                                                          "key": V["profile"]}}}))
    (agent / "models.json").write_text(json.dumps({"providers": {"openrouter": {"apiKey": V["models"]}}}))
    (state / "service-env").mkdir()
    (state / "service-env" / "openclaw-gateway.env").write_text(f"SLACK_APP_TOKEN={V['svcenv']}\n")
    (state / "identity").mkdir()
    (state / "identity" / "device.json").write_text(json.dumps({"deviceId": "d", "privateKeyPem": V["idpem"]}))
    (state / "devices").mkdir()
    (state / "devices" / "paired.json").write_text(json.dumps(
        {"dev1": {"deviceId": "dev1", "tokens": {"operator": {"token": V["device"]}}}}))
    _stores(state, agent)
    units = tmp_path / "home" / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / "openclaw-gateway.service").write_text(
        f'[Service]\nEnvironment="ANTHROPIC_API_KEY={V["unit"]}" "NODE_ENV=production"\n')
    return state


def _stores(state: Path, agent: Path) -> None:
    """2026.9-style SQLite stores (table shapes from 2026.9.6's dist)."""
    (state / "state").mkdir()
    with closing(sqlite3.connect(state / "state" / "openclaw.sqlite")) as conn:
        conn.execute("CREATE TABLE secret_store_entries (scope_kind TEXT, scope_id TEXT, name TEXT, value TEXT, "
                     "kind TEXT, deleted_at_ms INTEGER)")
        conn.execute("INSERT INTO secret_store_entries VALUES ('team', '', 'OPENAI_API_KEY', ?, 'secret', NULL)",
                     (V["store"],))
        conn.execute("INSERT INTO secret_store_entries VALUES ('team', '', 'OLD_KEY', ?, 'secret', 5)",
                     (V["deleted"],))
        conn.execute("CREATE TABLE device_identities (identity_key TEXT, device_id TEXT, private_key_pem TEXT)")
        conn.execute("INSERT INTO device_identities VALUES ('default', 'd', ?)", (V["pem"],))
        conn.execute("CREATE TABLE device_auth_tokens (device_id TEXT, role TEXT, token TEXT)")
        conn.execute("INSERT INTO device_auth_tokens VALUES ('dev9', 'operator', ?)", (V["devsql"],))
        conn.commit()
    with closing(sqlite3.connect(agent / "openclaw-agent.sqlite")) as conn:
        conn.execute("CREATE TABLE auth_profile_store (store_key TEXT, store_json TEXT)")
        conn.execute("INSERT INTO auth_profile_store VALUES ('main', ?)", (json.dumps(
            {"profiles": {"openai:default": {"type": "api_key", "provider": "openai", "key": V["authsql"]}}}),))
        conn.commit()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


def _assert_no_value(text: str) -> None:
    for name, value in V.items():
        assert value not in text and json.dumps(value)[1:-1] not in text, f"the {name} value leaked"


def test_every_kind_is_listed_with_location_and_fingerprint_and_no_value(tmp_path: Path) -> None:
    state = _home(tmp_path)
    code, out = _run("credentials", "--json", "--state-dir", str(state))
    assert code == 0, out
    _assert_no_value(out)
    by_id = {c["id"]: c for c in moltir_json(out)["credentials"]}
    config = str(state / "openclaw.json")
    expect = {
        "gateway.auth.token": ("gateway_token", "openclaw", config),
        "gateway.auth.password": ("gateway_password", "openclaw", config),
        "gateway.remote.token": ("gateway_remote_token", "openclaw", config),
        "hooks.token": ("hooks_token", "openclaw", config),
        "models.providers.openai.apiKey": ("api_key", "openai", config),
        "channels.telegram.botToken": ("bot_token", "telegram", config),
        "channels.telegram.accounts.ops.botToken": ("bot_token", "telegram", config),
        "channels.telegram.accounts.filed.tokenFile": ("bot_token", "telegram", config),
        "channels.discord.token": ("bot_token", "discord", config),
        "channels.slack.botToken": ("bot_token", "slack", config),
        "channels.slack.appToken": ("app_token", "slack", config),
        "channels.slack.signingSecret": ("signing_secret", "slack", config),
        "channels.matrix.accessToken": ("access_token", "matrix", str(state / "matrix.json5")),
        "dotenv.OPENAI_API_KEY": ("api_key", "openai", str(state / ".env")),
        "agents.main.auth-profiles.profiles.anthropic:default.key": ("api_key", "anthropic", None),
        "agents.main.models.providers.openrouter.apiKey": ("api_key", "openrouter", None),
        "devices.paired.dev1.tokens.operator.token": ("device_token", "openclaw", None),
        "unit.openclaw-gateway.service.ANTHROPIC_API_KEY": ("api_key", "anthropic", None),
        "sqlite.state.store.team.OPENAI_API_KEY": ("api_key", "openai", str(state / "state" / "openclaw.sqlite")),
        "sqlite.state.device_auth_tokens[dev9/operator]": ("device_token", "openclaw", None),
        "sqlite.state.device_identities[default]": ("device_private_key", "openclaw", None),
        "identity.device.privateKeyPem": ("device_private_key", "openclaw", str(state / "identity" / "device.json")),
        "sqlite.agents.main.auth_profile_store[main].profiles.openai:default.key": ("api_key", "openai", None),
    }
    for cid, (kind, provider, file) in expect.items():
        rec = by_id.get(cid)
        assert rec is not None, f"{cid} missing: {sorted(by_id)}"
        assert (rec["kind"], rec["provider"]) == (kind, provider), rec
        assert rec["fingerprint"] and rec["fingerprint"].startswith("hmac-sha256:"), rec
        if file:
            assert rec["location"]["file"] == file, rec
    assert by_id["channels.matrix.accessToken"]["location"]["key"] == "accessToken"
    assert by_id["channels.telegram.accounts.filed.tokenFile"]["storage"] == "file"
    ref = by_id["models.providers.envref.apiKey"]
    assert ref["storage"] == "secretref" and ref["ref"] == "env:default:OPENAI_API_KEY" and ref["provider"] == "openai"
    assert ref["fingerprint"] == by_id["dotenv.OPENAI_API_KEY"]["fingerprint"]  # from .env
    store = by_id["models.providers.storeref.apiKey"]  # resolved from the shared store's team entry
    assert store["fingerprint"] == by_id["sqlite.state.store.team.OPENAI_API_KEY"]["fingerprint"]
    assert by_id["service-env.openclaw-gateway.env.SLACK_APP_TOKEN"]["location"]["key"] == "SLACK_APP_TOKEN"
    assert not [c for c in by_id if "OLD_KEY" in c]  # a deleted store entry is gone
    assert "channels.telegram.maxTokens" not in by_id and "dotenv.LOG_LEVEL" not in by_id
    assert by_id["channels.telegram.botToken"]["revocation"]["api"] is False
    assert by_id["channels.slack.botToken"]["revocation"]["api"] is True
    assert by_id["hooks.token"]["revocation"]["by"] == "local"
    assert by_id["gateway.auth.token"]["journal_fingerprint"]
    code, text = _run("credentials", "--state-dir", str(state))
    assert code == 0 and "channels.telegram.accounts.ops.botToken" in text
    _assert_no_value(text)


def test_fingerprints_are_keyed_per_run(tmp_path: Path) -> None:
    state = _home(tmp_path)
    runs = [{c["id"]: c["fingerprint"] for c in moltir_json(_run("credentials", "--json", "--state-dir",
                                                                   str(state))[1])["credentials"]}
            for _ in range(2)]
    assert runs[0]["gateway.auth.token"] != runs[1]["gateway.auth.token"]


def _case(tmp_path: Path, state: Path) -> Path:
    """A case as contain leaves it: the inventory step, then copies of config, transcript, log, SQLite."""
    rb = tmp_path / "rb.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "credentials", action: "credentials.inventory" } ] }')
    case = tmp_path / "case"
    code, out = _run("contain", "--runbook", str(rb), "--case-dir", str(case), "--yes", "--json",
                     "--state-dir", str(state))
    assert code == 0, out
    _assert_no_value(out)
    return case


def _copy(case: Path, source: str, category: str, data: bytes, rule: str = "x") -> dict[str, Any]:
    rel = f"evidence/fs/{source.lstrip('/')}"
    (case / rel).parent.mkdir(parents=True, exist_ok=True)
    (case / rel).write_bytes(data)
    return {"source": source, "path": rel, "category": category, "rule": rule}


def test_case_inventory_and_exposure(tmp_path: Path) -> None:
    state = _home(tmp_path)
    case = _case(tmp_path, state)
    inv = json.loads((case / "evidence/credentials/inventory.json").read_text())
    _assert_no_value((case / "evidence/credentials/inventory.json").read_text())
    _assert_no_value((case / "journal.jsonl").read_text())
    cfg = str(state / "openclaw.json")
    db = tmp_path / "db.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_json TEXT)")
        conn.execute("INSERT INTO transcript_events VALUES ('s1', 7, ?)", (json.dumps({"text": V["tgops"]}),))
        conn.commit()
    files = [
        _copy(case, cfg, "config", (state / "openclaw.json").read_bytes(), "{config}"),
        _copy(case, str(state / "matrix.json5"), "config", (state / "matrix.json5").read_bytes(), "{includes}"),
        _copy(case, cfg + ".bak", "config", CONFIG.replace(V["gw"], "gw-token-OLD-999999999").encode(),
              "{config}.bak"),
        _copy(case, str(state / "agents/main/sessions/s.jsonl"), "transcript",
              b'{"a":1}\n' + json.dumps({"reply": "here: " + V["hooks"]}).encode() + b"\n"),
        _copy(case, "/tmp/openclaw/openclaw-2026-01-01.log", "log",
              f"x\ny\nold gw-token-OLD-999999999 z\nenv {V['store']}\n".encode()),
        _copy(case, str(state / "agents/main/agent/openclaw-agent.sqlite"), "sqlite", db.read_bytes()),
        _copy(case, str(state / "matrix-note.txt"), "persistence", f"access {V['include']}\n".encode()),
        _copy(case, str(state / "state" / "openclaw.sqlite"), "sqlite",
              (state / "state" / "openclaw.sqlite").read_bytes()),
    ]
    (case / "manifest.json").write_text(json.dumps({"files": files}))
    code, out = _run("credentials", "--case", str(case), "--json")
    assert code == 0, out
    _assert_no_value(out)
    assert "gw-token-OLD-999999999" not in out
    report = moltir_json(out)
    by_id = {c["id"]: c for c in report["credentials"]}
    hooks = by_id["hooks.token"]["exposed_in"]
    assert hooks == [{"path": str(state / "agents/main/sessions/s.jsonl"), "case_path": files[3]["path"],
                      "line": 2, "how": "transcript line"}]
    ops = by_id["channels.telegram.accounts.ops.botToken"]["exposed_in"]
    assert ops[0]["row"] == "transcript_events session_id=s1 seq=7" and ops[0]["how"] == "transcript_events row"
    old = by_id["gateway.auth.token@openclaw.json.bak"]["exposed_in"]
    assert old == [{"path": "/tmp/openclaw/openclaw-2026-01-01.log", "case_path": files[4]["path"], "line": 3,
                    "how": "gateway log line"}]
    assert by_id["channels.matrix.accessToken"]["exposed_in"][0]["how"] == "file line"
    store = by_id["sqlite.state.store.team.OPENAI_API_KEY"]  # read from the copied store, not its own table
    assert store["exposed_in"] == [{"path": "/tmp/openclaw/openclaw-2026-01-01.log", "case_path": files[4]["path"],
                                    "line": 4, "how": "gateway log line"}]
    assert by_id["sqlite.state.device_auth_tokens[dev9/operator]"]["exposed_in"] == []
    assert by_id["gateway.auth.token"]["exposed_in"] == []  # only where it lives: the config copies
    assert by_id["dotenv.OPENAI_API_KEY"]["searched"] is False  # not in the case's copies
    inv_fp = {c["id"]: c["fingerprint"] for c in inv["credentials"]}
    assert by_id["hooks.token"]["fingerprint"] == inv_fp["hooks.token"]  # the case's key
    top = set(report["rotate_first"][:4])
    assert {"hooks.token", "channels.telegram.accounts.ops.botToken"} <= top
    assert report["exposed"][-1] == "channels.matrix.accessToken"  # a file copy ranks after transcripts/logs
    code, text = _run("credentials", "--case", str(case))
    assert code == 0 and "rotate these first" in text
    _assert_no_value(text)
    first = text.splitlines()[1]
    assert first.split()[0] in {"hooks.token", "channels.telegram.accounts.ops.botToken",
                                "gateway.auth.token@openclaw.json.bak", "sqlite.state.store.team.OPENAI_API_KEY"}
    assert f"EXPOSED: {state / 'agents/main/sessions/s.jsonl'} line 2 (transcript line)" in text


def test_a_case_without_evidence_is_a_one_line_answer(tmp_path: Path) -> None:
    code, out = _run("credentials", "--case", str(tmp_path / "nope"), "--json")
    report = json.loads(out)
    assert code == 2 and report["ok"] is False and "no case" in report["errors"][0]["message"]


def test_status_and_contain_end_with_the_credentials_to_rotate(tmp_path: Path) -> None:
    state = _home(tmp_path)
    rb = tmp_path / "rb.json5"
    rb.write_text('{ name: "contain", steps: [ { id: "credentials", action: "credentials.inventory" } ] }')
    case = tmp_path / "case"
    code, out = _run("contain", "--runbook", str(rb), "--case-dir", str(case), "--yes", "--state-dir", str(state))
    assert code == 0, out
    _assert_no_value(out)
    assert "next: rotate" in out and "channels.telegram.accounts.ops.botToken" in out
    code, out = _run("status", "--json", "--case-dir", str(case), "--state-dir", str(state))
    report = moltir_json(out)
    todo = {t["id"]: t for t in report["credentials"]["to_rotate"]}
    assert todo["hooks.token"]["provider"] == "openclaw" and todo["channels.slack.botToken"]["revocation_api"] is True
    assert "gateway.auth.token" in todo  # this case did not rotate it
    assert report["status"] == "audited"  # listing credentials contains nothing
    code, text = _run("status", "--case-dir", str(case), "--state-dir", str(state))
    assert "next: rotate" in text
    _assert_no_value(out + text)


def test_the_gateway_token_the_case_rotated_is_not_a_next_step(tmp_path: Path) -> None:
    from moltir.commands.credentials import next_steps

    (tmp_path / "evidence" / "credentials").mkdir(parents=True)
    (tmp_path / "evidence" / "credentials" / "inventory.json").write_text(json.dumps({"credentials": [
        {"id": "gateway.auth.token", "kind": "gateway_token", "provider": "openclaw",
         "journal_fingerprint": "abcd1234"},
        {"id": "hooks.token", "kind": "hooks_token", "provider": "openclaw"}]}))
    (tmp_path / "journal.jsonl").write_text(json.dumps({"event": "token.generated", "new_fingerprint": "abcd1234"}))
    steps = next_steps(tmp_path)
    assert steps is not None
    assert [t["id"] for t in steps["to_rotate"]] == ["hooks.token"]
    assert steps["rotated_by_this_case"] == ["gateway.auth.token"]
    assert next_steps(tmp_path / "evidence") is None  # no inventory: nothing to say


def test_a_gateway_token_the_case_put_in_the_keyring_is_not_a_next_step(tmp_path: Path) -> None:
    """The keyring route: the config then holds moltir's SecretRef, the inventory no value (so no
    fingerprint); the rotate step's keyring entry names it (seen in make demo: 'rotate gateway.auth.token')."""
    from moltir.commands.credentials import next_steps

    (tmp_path / "evidence" / "credentials").mkdir(parents=True)
    (tmp_path / "evidence" / "credentials" / "inventory.json").write_text(json.dumps({"credentials": [
        {"id": "gateway.auth.token", "kind": "gateway_token", "provider": "openclaw", "storage": "secretref",
         "ref": "exec:moltir:gateway-token:7b1bfe656e4a320f"},
        {"id": "channels.telegram.botToken", "kind": "bot_token", "provider": "telegram"}]}))
    records = [{"event": "token.generated", "new_fingerprint": "2f334240"},
               {"event": "step.done", "action": "token.rotate", "step": "rotate-token",
                "details": {"keyring_entry": "moltir/gateway-token:7b1bfe656e4a320f", "mode": "keyring-ref"}}]
    (tmp_path / "journal.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    steps = next_steps(tmp_path)
    assert steps is not None and steps["rotated_by_this_case"] == ["gateway.auth.token"]
    assert [t["id"] for t in steps["to_rotate"]] == ["channels.telegram.botToken"]


def test_a_value_across_a_long_line_cut_is_found(tmp_path: Path) -> None:
    import io

    from moltir.evidence import exposure

    value = "sk-cut-across-the-boundary-0123456789"
    data = b"x" * (exposure.MAX_LINE - 10) + value.encode() + b"y" * 100 + b"\nnext line\n"
    lines = list(exposure._lines(io.BytesIO(data)))
    assert [n for n, _ in lines] == [1, 1, 2]
    assert any(value.encode() in chunk for _, chunk in lines)
    assert max(len(chunk) for _, chunk in lines) <= exposure.MAX_LINE + exposure.OVERLAP


def test_the_running_gateways_environment_is_listed(tmp_path: Path, monkeypatch: Any) -> None:
    from moltir.openclaw import processes

    class _Proc:
        def environ(self) -> dict[str, str]:
            return {"TELEGRAM_BOT_TOKEN": V["tg"], "PATH": "/usr/bin"}

    class _Gw:
        pid = 4242

        def process(self) -> _Proc:
            return _Proc()

    monkeypatch.setattr(processes, "find_gateways", lambda install: [_Gw()])
    state = _home(tmp_path)
    code, out = _run("credentials", "--json", "--state-dir", str(state))
    assert code == 0, out
    _assert_no_value(out)
    by_id = {c["id"]: c for c in moltir_json(out)["credentials"]}
    rec = by_id["process.gateway.TELEGRAM_BOT_TOKEN"]
    assert (rec["provider"], rec["storage"], rec["location"]["file"]) == ("telegram", "env", "/proc/4242/environ")
    assert rec["fingerprint"] == by_id["channels.telegram.botToken"]["fingerprint"]  # the same value
    assert "process.gateway.PATH" not in by_id


def test_a_zstd_transcript_archive_is_searched(tmp_path: Path, monkeypatch: Any) -> None:
    """2026.9 cold transcripts (``sessions/cold/*.jsonl.zst``) are decompressed as a stream; without a
    zstd module each archive is named in the notes instead."""
    from backports import zstd

    from moltir import zstdio
    from moltir.evidence.exposure import Needle, scan_case

    data = zstd.compress(('{"a": 1}\n{"reply": "' + V["hooks"] + '"}\n').encode())
    case = tmp_path / "case"
    entry = _copy(case, "/s/agents/main/sessions/cold/s.jsonl.zst", "transcript", data)
    (case / "manifest.json").write_text(json.dumps({"files": [entry]}))
    scan = scan_case(case, [Needle("hooks.token", V["hooks"])])
    assert scan.hits == {"hooks.token": [{"path": entry["source"], "case_path": entry["path"], "line": 2,
                                          "how": "transcript line"}]}
    monkeypatch.setattr(zstdio, "_module", lambda: None)
    scan = scan_case(case, [Needle("hooks.token", V["hooks"])])
    assert "no zstd module" in scan.notes[0] and not scan.hits


def test_a_compressed_transcript_events_row_is_searched(tmp_path: Path, monkeypatch: Any) -> None:
    """2026.9.6 stores an event of 1 KiB or more zstd-compressed (``event_zstd`` + ``event_utf8_bytes``):
    a big tool result, e.g. the agent reading the config, is exactly where a credential leaks."""
    from backports import zstd

    from moltir import zstdio
    from moltir.evidence.exposure import Needle, scan_case

    # the value at the end is made of pieces seen before it, so the compressed blob holds no copy of it
    head, tail = V["hooks"][:12], V["hooks"][12:]
    event = json.dumps({"type": "message", "content": head * 60 + "|" + tail * 60 + "|" + V["hooks"]}).encode()
    db = tmp_path / "db.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_json TEXT, "
                     "event_zstd BLOB, event_utf8_bytes INTEGER)")
        conn.execute("INSERT INTO transcript_events VALUES ('s1', 3, NULL, ?, ?)", (zstd.compress(event), len(event)))
        conn.execute("INSERT INTO transcript_events VALUES ('s1', 4, NULL, ?, ?)", (b"damaged", 99))
        conn.commit()
    case = tmp_path / "case"
    entry = _copy(case, "/s/agents/main/agent/openclaw-agent.sqlite", "transcript", db.read_bytes())
    (case / "manifest.json").write_text(json.dumps({"files": [entry]}))
    assert V["hooks"].encode() not in db.read_bytes()   # no copy of the value in the file: only compressed
    scan = scan_case(case, [Needle("hooks.token", V["hooks"])])
    assert [h["row"] for h in scan.hits["hooks.token"]] == ["transcript_events session_id=s1 seq=3"]
    assert any("seq=4" in n and "does not decode" in n for n in scan.notes), scan.notes
    monkeypatch.setattr(zstdio, "_module", lambda: None)
    scan = scan_case(case, [Needle("hooks.token", V["hooks"])])
    assert not scan.hits and any("not decoded" in n for n in scan.notes)


def test_a_token_file_that_is_a_fifo_or_a_device_is_not_read(tmp_path: Path) -> None:
    import os

    state = tmp_path / "state"
    state.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (state / "openclaw.json").write_text(f'{{ channels: {{ telegram: {{ tokenFile: "{fifo}", accounts: '
                                         '{ z: { tokenFile: "/dev/zero" } } } } }')
    (state / ".env").unlink(missing_ok=True)
    os.mkfifo(state / ".env")
    code, out = _run("credentials", "--json", "--state-dir", str(state))
    assert code == 0, out
    by_id = {c["id"]: c for c in moltir_json(out)["credentials"]}
    assert by_id["channels.telegram.tokenFile"]["fingerprint"] is None
    assert by_id["channels.telegram.accounts.z.tokenFile"]["resolved"] is False


def test_a_malformed_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "openclaw.json").write_text("{ gateway: ")
    result = CliRunner().invoke(cli, ["credentials", "--state-dir", str(state)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "openclaw.json:1" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in state.iterdir()) == ["openclaw.json"]  # nothing written


def test_a_source_moltir_may_not_read_is_named_and_the_rest_is_listed(tmp_path: Path, monkeypatch: Any) -> None:
    """A gateway once run as root leaves root-owned 0700 folders in the state dir: the inventory (and the
    contain step that takes it) lists what it can and names what it could not read (seen on a fleet
    host: contain --check crashed with an internal PermissionError)."""
    from moltir.openclaw import credential_sqlite

    def denied(*_a: Any, **_k: Any) -> list[Any]:
        raise PermissionError(13, "Permission denied", "/state/agents/main/agent")

    monkeypatch.setattr(credential_sqlite, "sqlite_credentials", denied)
    state = _home(tmp_path)
    code, out = _run("credentials", "--json", "--state-dir", str(state))
    assert code == 0, out
    data = moltir_json(out)
    assert "channels.telegram.botToken" in {c["id"] for c in data["credentials"]}
    assert any("SQLite stores" in n and "Permission denied" in n for n in data["notes"]), data["notes"]
