"""Masked secrets in transcripts' tool results (``moltir credentials --case``): a mask OpenClaw wrote is
recorded as "sent to the model provider" with the time, tied to the credential whose first 6 and last 4
characters it shows, else as an unattributed exposure; releases that do not mask are not searched for
masks. The records are shaped as 2026.9.6 writes them (``dist/transcript-redact-CcOcbRyc.mjs``
``redactTranscriptMessage`` with ``dist/redact-B5EGyLvV.mjs`` ``maskToken``: first 6, U+2026, last 4;
JSON.stringify: compact, the ellipsis raw)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.harness.envelope import moltir_json
from tests.unit.installed import installed_package

from moltir.cli import cli
from moltir.evidence import masks
from moltir.openclaw import capabilities as capmod

MODEL = "sk-masked-model-key-0123456789WXYZ"
TG = "123456789:AAmasked-telegram-token-abcd"
HOW = "masked in a tool result (sent to the model provider)"


def _record(role: str, text: str, ts: str = "2026-12-07T04:06:05.123Z", tool: str = "read") -> bytes:
    msg: dict[str, Any] = {"role": role, "content": [{"type": "text", "text": text}], "timestamp": 1796616365123}
    if role == "toolResult":
        msg = {**msg, "toolCallId": "call_1", "toolName": tool, "isError": False}
    rec = {"type": "message", "id": "e1", "parentId": "e0", "timestamp": ts, "message": msg}
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()


def test_the_mask_is_openclaws_masktoken() -> None:
    assert masks.mask_of(MODEL) == "sk-mas\u2026WXYZ"
    assert masks.mask_of("short-secret-17ch") is None  # under 18: OpenClaw writes "***"
    assert masks.mask_of("x" * 18) == "xxxxxx\u2026xxxx"


def test_spans_are_tied_to_credentials_only_in_tool_results() -> None:
    known = {masks.mask_of(MODEL) or "": ["models.providers.openai.apiKey"]}
    text = f"OPENAI_API_KEY={masks.mask_of(MODEL)}\nother=abcdef\u2026wxyz"
    hits = masks.masked_spans(_record("toolResult", text, tool="exec"), known)
    when = "2026-12-07T04:06:05.123Z"
    assert [(h.ids, h.time, h.tool) for h in hits] == [(("models.providers.openai.apiKey",), when, "exec"),
                                                       ((), when, "exec")]
    assert masks.masked_spans(_record("assistant", text), known) == []  # the model's own words: not a tool result
    assert masks.masked_spans(_record("toolResult", "Loading\u2026done, wait\u2026 ok"), known) == []  # prose
    # JSON-escaped ellipsis (a copy re-serialised by Python) and a record without an ISO timestamp
    rec = json.loads(_record("toolResult", f"bot{masks.mask_of(TG)}"))
    del rec["timestamp"]
    hits = masks.masked_spans(json.dumps(rec).encode(), {masks.mask_of(TG) or "": ["tg"]})
    assert [(h.ids, h.time) for h in hits] == [(("tg",), "2026-12-07T04:06:05.123Z")]
    assert [h.ids for h in masks.masked_spans(_record("toolResult", f"url /bot{masks.mask_of(TG)}/getMe"), {})] == [()]


def _case(tmp_path: Path, version: str | None, transcript: bytes, db_rows: list[bytes]) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    config = (f'{{ models: {{ providers: {{ openai: {{ apiKey: "{MODEL}" }} }} }},\n'
              f'  channels: {{ telegram: {{ botToken: "{TG}" }} }} }}\n')
    case = tmp_path / "case"
    files = []
    for source, category, data, rule in (
            (str(state / "openclaw.json"), "config", config.encode(), "{config}"),
            (str(state / "agents/main/sessions/s1.jsonl"), "transcript", transcript, "x")):
        rel = f"evidence/fs/{source.lstrip('/')}"
        (case / rel).parent.mkdir(parents=True, exist_ok=True)
        (case / rel).write_bytes(data)
        files.append({"source": source, "path": rel, "category": category, "rule": rule})
    db_source = str(state / "agents/main/agent/openclaw-agent.sqlite")
    rel = f"evidence/fs/{db_source.lstrip('/')}"
    (case / rel).parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(case / rel)) as conn:  # 2026.9.6's columns (dist: transcript_events)
        conn.execute("CREATE TABLE transcript_events (session_id TEXT, seq INTEGER, event_json TEXT, "
                     "created_at INTEGER, event_zstd BLOB, event_utf8_bytes INTEGER)")
        for seq, row in enumerate(db_rows, 1):
            conn.execute("INSERT INTO transcript_events VALUES ('s9', ?, ?, 0, NULL, NULL)", (seq, row.decode()))
        conn.commit()
    files.append({"source": db_source, "path": rel, "category": "sqlite", "rule": "x"})
    (case / "manifest.json").write_text(json.dumps({"files": files}))
    (case / "case.json").write_text(json.dumps({"openclaw": {"product": "openclaw", "version": version}}))
    return case


def _report(case: Path) -> tuple[dict[str, Any], str]:
    result = CliRunner().invoke(cli, ["credentials", "--case", str(case), "--json"])
    assert result.exit_code == 0, result.stdout
    text = CliRunner().invoke(cli, ["credentials", "--case", str(case)]).stdout
    for out in (result.stdout, text):
        for value in (MODEL, TG):
            assert value not in out and (masks.mask_of(value) or "") not in out  # not even the mask's 10 characters
        assert "\u2026" not in out
    return moltir_json(result.stdout), text


def test_a_masked_span_is_an_exposure_with_its_time(tmp_path: Path) -> None:
    lines = b"\n".join([_record("user", "show me the env"),
                        _record("toolResult", f"OPENAI_API_KEY={masks.mask_of(MODEL)}", tool="exec"),
                        _record("toolResult", "token: zzzzzz\u2026qqqq", "2026-12-07T05:00:00.000Z")]) + b"\n"
    rows = [_record("toolResult", f"https://api.telegram.org/bot{masks.mask_of(TG)}/getMe",
                    "2026-12-07T06:00:00.000Z", "web_fetch")]
    case = _case(tmp_path, "2026.9.6", lines, rows)
    report, text = _report(case)
    by_id = {c["id"]: c for c in report["credentials"]}
    transcript = str(tmp_path / "state/agents/main/sessions/s1.jsonl")
    assert by_id["models.providers.openai.apiKey"]["exposed_in"] == [
        {"path": transcript, "case_path": f"evidence/fs/{transcript.lstrip('/')}", "line": 2, "how": HOW,
         "time": "2026-12-07T04:06:05.123Z", "tool": "exec"}]
    tg = by_id["channels.telegram.botToken"]["exposed_in"]
    assert [(h["row"], h["how"], h["time"], h["tool"]) for h in tg] == [
        ("transcript_events session_id=s9 seq=1", HOW, "2026-12-07T06:00:00.000Z", "web_fetch")]
    assert set(report["rotate_first"][:2]) == {"models.providers.openai.apiKey", "channels.telegram.botToken"}
    spans = report["masked_spans"]
    assert spans["searched"] is True and "2026.9.6" in spans["why"]
    assert [(u["line"], u["time"], u["how"]) for u in spans["unattributed"]] == [(3, "2026-12-07T05:00:00.000Z", HOW)]
    assert f"MASKED SECRET, credential not identified: {transcript} line 3 ({HOW}, read, at 2026-12-07T05:00:00.000Z)" \
        in text
    assert f"EXPOSED: {transcript} line 2 ({HOW}, exec, at 2026-12-07T04:06:05.123Z)" in text


def test_a_release_that_does_not_mask_is_not_searched_for_masks(tmp_path: Path) -> None:
    lines = _record("toolResult", f"OPENAI_API_KEY={masks.mask_of(MODEL)} and zzzzzz\u2026qqqq") + b"\n"
    report, _ = _report(_case(tmp_path, "2026.1.29", lines, []))
    assert report["masked_spans"]["searched"] is False and report["masked_spans"]["unattributed"] == []
    assert all(c["exposed_in"] == [] for c in report["credentials"] if c.get("searched"))


def test_two_credentials_with_one_mask_are_both_named(tmp_path: Path) -> None:
    from moltir.evidence.exposure import Needle, scan_case

    twin = MODEL[:6] + "-other-middle-" + MODEL[-4:]
    lines = _record("toolResult", f"key={masks.mask_of(MODEL)}") + b"\n"
    case = _case(tmp_path, "2026.9.6", lines, [])
    config = str(tmp_path / "state/openclaw.json")
    scan = scan_case(case, [Needle("a", MODEL, frozenset({config})), Needle("b", twin)], masks=True)
    assert [h["matches"] for h in scan.hits["a"]] == [2] and [h["matches"] for h in scan.hits["b"]] == [2]


def _package_masks(package: Path) -> bool:
    dist = package / "dist"
    return any("function redactTranscriptMessage(" in p.read_text(encoding="utf-8", errors="replace")
               for p in dist.rglob("*.*js") if p.is_file())


@pytest.mark.parametrize("version", ["2026.1.29", "2026.2.25", "2026.5.28", "2026.9.6"])
def test_transcript_masks_row_matches_the_installed_package(version: str) -> None:
    package = installed_package(version)
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert caps.transcript_masks is _package_masks(package)
