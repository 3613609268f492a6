from __future__ import annotations

import json
from pathlib import Path

from moltir import redaction as secrets
from moltir.engine.journal import GENESIS, Journal, verify_chain


def test_chain_links_every_record_and_verifies(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.jsonl")
    for i in range(5):
        j.append("event", n=i)
    report = verify_chain(tmp_path / "journal.jsonl")
    assert report.ok and report.records == 5
    first = json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[0])
    assert first["prev"] == GENESIS and first["seq"] == 0


def test_tampering_is_detected_and_located(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    for i in range(4):
        j.append("event", n=i)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"n":1', '"n":9')
    path.write_text("\n".join(lines) + "\n")
    report = verify_chain(path)
    assert not report.ok
    assert any(p.startswith("line 3:") for p in report.problems)


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("a")
    Journal(path).append("b")
    assert verify_chain(path).ok
    assert [r["seq"] for r in Journal(path).records()] == [0, 1]


def test_partial_tail_from_a_crash_is_set_aside_and_chain_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("a")
    with path.open("ab") as fh:
        fh.write(b'{"seq":1,"event":"half')
    j = Journal(path)
    j.append("b")
    assert verify_chain(path).ok
    events = [r["event"] for r in j.records()]
    assert events == ["a", "journal.tail_recovered", "b"]
    assert (tmp_path / "journal.jsonl.partial-0").read_bytes() == b'{"seq":1,"event":"half'


def test_secret_values_and_secret_keys_never_reach_the_file(tmp_path: Path) -> None:
    token = "f" * 20 + "0123456789abcdef"
    secrets.register(token)
    path = tmp_path / "journal.jsonl"
    Journal(path).append("x", note=f"rotated to {token}", auth={"token": "plain-secret-value"})
    text = path.read_text()
    assert token not in text and "plain-secret-value" not in text
    assert secrets.fingerprint(token) in text


def test_null_journal_writes_nothing(tmp_path: Path) -> None:
    before = sorted(tmp_path.rglob("*"))
    Journal(None).append("x")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_damaged_middle_line_is_an_exit_5_error_not_a_crash(tmp_path: Path) -> None:
    import pytest

    from moltir.engine.journal import JournalDamaged

    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    for i in range(3):
        j.append("e", i=i)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "[1, 2]\n" + lines[2])
    with pytest.raises(JournalDamaged) as err:
        Journal(path)
    assert err.value.exit_code == 5 and "line 2" in err.value.message
