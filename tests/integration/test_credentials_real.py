"""``moltir credentials`` end to end on the REAL gateway (2026.9.6 and 2026.1.29): the inventory of the
harness home (Telegram with accounts, a model key in the config, one in ``.env``, ``hooks.token``), and
exposure: the fake model answers with a value, the real gateway writes it into its transcript (JSONL on
2026.1.29, SQLite ``transcript_events`` on 2026.9.6), the value then becomes ``hooks.token``, and
``moltir credentials --case`` finds it in the case's copy of that transcript. In the same turn the agent
reads a workspace file holding the configured model key: 2026.9.6 writes the tool result with the key
masked (first 6, "…", last 4), which is found as "sent to the model provider" with its time; 2026.1.29
writes it whole. The workspace file itself is found in the snapshot's copy of the workspace.

Decision: ``hooks.token`` is written into the config after the agent turn (gateway stopped), so the run
does not depend on whether a release masks configured secrets in transcripts; what is under test is
moltir finding a credential's value in the transcript the real gateway wrote. One gateway run per release.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.harness.configs import TG_ALERTS_TOKEN, TG_DEFAULT_TOKEN, TG_OPS_TOKEN
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.transcripts import Transcripts, run_agent_turn

from moltir.openclaw import capabilities as capmod

MODEL_KEY = "sk-fake-not-a-secret"  # models.providers.fake.apiKey of the harness config

INVENTORY_RUNBOOK = """// the contain runbook's credential and evidence steps
{ name: "contain", steps: [ { id: "credentials", action: "credentials.inventory" },
                            { id: "snapshot", action: "evidence.snapshot" } ] }
"""


def _moltir(home: OpenClawHome, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args],
                          env={**home.env, "MOLTIR_HOME": str(home.root / "moltir-home")}, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, check=False, cwd=home.root)


def _plant(home: OpenClawHome, hooks: str, dotenv: str) -> None:
    text = home.config_path.read_text()
    assert text.count("\n  logging: {") == 1, "the harness config changed shape"
    home.config_path.write_text(text.replace("\n  logging: {", f'\n  hooks: {{ token: "{hooks}" }},\n  logging: {{'))
    env_file = home.state_dir / ".env"
    old = env_file.read_text() if env_file.exists() else ""
    env_file.write_text(old + f"OPENAI_API_KEY={dotenv}\n")


def _assert_the_read_key_is_exposed(home: OpenClawHome, tr: Transcripts, report: dict[str, Any],
                                    hits: list[dict[str, Any]], notes: Path) -> None:
    """The model key the agent read: in the workspace file (copied by the snapshot) and in the tool result
    of the real transcript, masked where the release masks (capability transcript_masks)."""
    masks = capmod.for_install("openclaw", home.release.id, "test", package_root=None,
                               state_dir=None).transcript_masks
    assert report["masked_spans"]["searched"] is masks, report["masked_spans"]
    assert report["masked_spans"]["unattributed"] == [], report["masked_spans"]
    assert (str(notes), "agent workspace file line") in {(h["path"], h["how"]) for h in hits}, hits
    in_transcript = [h for h in hits if h["path"] in {str(p) for p in tr.paths}]
    assert len(in_transcript) == 1, hits
    if masks:
        assert tr.contains("sk-fak\u2026cret") and not tr.contains(MODEL_KEY)  # what the release wrote
        hit = in_transcript[0]
        assert hit["how"] == "masked in a tool result (sent to the model provider)" and hit["tool"] == "read", hit
        assert hit["time"].startswith(str(datetime.now(UTC).year)), hit
    else:
        assert tr.contains(MODEL_KEY)
        assert in_transcript[0]["how"] == "transcript line", hits


def test_inventory_and_a_real_transcript_exposure(openclaw_home: OpenClawHome, gateway: Gateway,
                                                  tmp_path: Path) -> None:
    home = openclaw_home
    hooks, dotenv = f"hooks-{secrets.token_hex(16)}", f"sk-dotenv-{secrets.token_hex(16)}"
    home.llm.reply = f"FAKE-REPLY: the hook token is {hooks} (do not share)"
    # the agent reads a workspace file holding the configured model key: the tool result goes to the model
    # provider; a release that masks secrets in transcripts writes "sk-fak…cret" there instead
    notes = home.state_dir / "workspace" / "notes.txt"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text(f"OPENAI_API_KEY={MODEL_KEY}\n")
    home.llm.tool_calls = [("read", {"path": str(notes)})]
    tr = run_agent_turn(home)
    assert "read" in home.llm.offered_tools() and not home.llm.tool_calls
    gateway.stop()
    gateway.assert_stopped()
    _plant(home, hooks, dotenv)
    values = [hooks, dotenv, home.token, TG_DEFAULT_TOKEN, TG_OPS_TOKEN, TG_ALERTS_TOKEN, MODEL_KEY]

    run = _moltir(home, "credentials", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    for value in values:
        assert value not in run.stdout + run.stderr
    listing = moltir_json(run.stdout)
    assert listing["notes"] == [], listing["notes"]  # every store (the SQLite ones on 2026.9.6) was read
    by_id = {c["id"]: c for c in listing["credentials"]}
    config = str(home.config_path)
    for cid, file in (("gateway.auth.token", config), ("hooks.token", config),
                      ("channels.telegram.botToken", config), ("channels.telegram.accounts.ops.botToken", config),
                      ("channels.telegram.accounts.alerts.botToken", config),
                      ("models.providers.fake.apiKey", config),
                      ("dotenv.OPENAI_API_KEY", str(home.state_dir / ".env"))):
        assert cid in by_id, f"{cid} missing: {sorted(by_id)}"
        rec = by_id[cid]
        assert rec["location"]["file"] == file and rec["location"]["key"], rec
        assert rec["fingerprint"].startswith("hmac-sha256:") and rec["storage"] == "plaintext", rec
    assert by_id["channels.telegram.accounts.ops.botToken"]["kind"] == "bot_token"
    assert by_id["dotenv.OPENAI_API_KEY"]["provider"] == "openai"

    case = tmp_path / "case"
    rb = home.root / "creds.json5"
    rb.write_text(INVENTORY_RUNBOOK)
    snap = _moltir(home, "contain", "--runbook", str(rb), "--case-dir", str(case), "--yes")
    assert snap.returncode == 0, snap.stdout + snap.stderr
    inventory = (case / "evidence" / "credentials" / "inventory.json").read_text()
    for value in values:
        assert value not in inventory and value not in (case / "journal.jsonl").read_text()
    verify = _moltir(home, "evidence", "verify", str(case))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    exp = _moltir(home, "credentials", "--case", str(case), "--json")
    assert exp.returncode == 0, exp.stdout + exp.stderr
    for value in values:
        assert value not in exp.stdout + exp.stderr
    report = moltir_json(exp.stdout)
    found = {c["id"]: c for c in report["credentials"]}
    hits = found["hooks.token"]["exposed_in"]
    assert hits, found["hooks.token"]
    assert {h["path"] for h in hits} & {str(p) for p in tr.paths}, (hits, tr.paths)
    how = "transcript_events row" if tr.kind == "sqlite" else "transcript line"
    assert any(h["how"] == how for h in hits), hits
    _assert_the_read_key_is_exposed(home, tr, report, found["models.providers.fake.apiKey"]["exposed_in"], notes)
    assert set(report["rotate_first"][:2]) == {"hooks.token", "models.providers.fake.apiKey"}
    assert set(report["exposed"]) == {"hooks.token", "models.providers.fake.apiKey"}
    assert found["channels.telegram.accounts.ops.botToken"]["exposed_in"] == []
    assert "sk-fak\u2026cret" not in exp.stdout + exp.stderr  # not even the mask
    assert found["hooks.token"]["fingerprint"] in inventory  # under the case's key
