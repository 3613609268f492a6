"""``moltir rotate dotenv.GITHUB_TOKEN``: a GitHub token in the state dir's ``.env`` is validated with
``GET /user`` before anything changes, written to the 0600 ``.env``, and ``--revoke-old`` revokes the old
one through GitHub's unauthenticated ``POST /credentials/revoke``, then polls ``GET /user`` with it until
it is refused. Against a loopback fake of that API (tests/harness/fakechat.py, reached through the
test-only ``MOLTIR_GITHUB_API``) and an in-process keyring; no value reaches the output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from tests.harness.envelope import moltir_json
from tests.harness.fakechat import FakeAPIs
from tests.unit import keyring_fakes as fakes

from moltir.cli import cli
from moltir.commands import rotations

OLD = "ghp_oldAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1111"
NEW = "github_pat_newBBBBBBBBBBBBBBBBBBBBBBBB2222"
GW = "gw-token-0123456789abcdef"
CRED = "dotenv.GITHUB_TOKEN"
ENTERPRISE = f"GH_ENTERPRISE_TOKEN=ghp_ent{'E' * 32}"


@pytest.fixture
def apis() -> Iterator[FakeAPIs]:
    with FakeAPIs() as fake:
        fake.good |= {OLD, NEW}
        yield fake


@pytest.fixture
def home(tmp_path: Path, apis: FakeAPIs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "openclaw.json").write_text(
        f'{{ meta: {{ lastTouchedVersion: "2026.9.6" }}, gateway: {{ mode: "local", auth: {{ token: "{GW}" }} }} }}\n')
    (state / "openclaw.json").chmod(0o600)
    (state / ".env").write_text(f"# tools\nGITHUB_TOKEN={OLD}\nOTHER=1\n{ENTERPRISE}\n")
    (state / ".env").chmod(0o600)
    monkeypatch.setenv("MOLTIR_HOME", str(tmp_path / "moltir"))
    monkeypatch.setenv("MOLTIR_GITHUB_API", f"{apis.url}/github")
    before = keyring.get_keyring()
    keyring.set_keyring(fakes.MemKeyring())
    yield state
    keyring.set_keyring(before)


def _rotate(state: Path, stdin: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["rotate", CRED, "--from-stdin", "--state-dir", str(state), *extra,
                                      "--wait-timeout", "5"], input=stdin)
    return result.exit_code, result.stdout + result.stderr


def test_plan_says_moltir_validates_and_revokes_a_github_token(home: Path) -> None:
    result = CliRunner().invoke(cli, ["rotate", "plan", "--state-dir", str(home), "--json"])
    assert result.exit_code == 0, result.output
    data = moltir_json(result.stdout)
    entry = next(c for c in data["credentials"] if c["id"] == CRED)
    assert "GitHub GET /user" in entry["rotation"]["validate"] and entry["rotation"]["store"] == "dotenv"
    assert entry["rotation"]["revoke_old"]["by_moltir"] is True
    enterprise = next(c for c in data["credentials"] if c["id"] == "dotenv.GH_ENTERPRISE_TOKEN")
    assert enterprise["rotation"]["by"] == "hand"  # another host than github.com: moltir does not guess it
    assert OLD not in result.stdout + result.stderr


def test_a_refused_token_changes_nothing(home: Path, apis: FakeAPIs) -> None:
    before = (home / ".env").read_bytes()
    code, out = _rotate(home, "ghp_notAtokenCCCCCCCCCCCCCCCCCCCCCCC3333\n", "--revoke-old")
    assert code == 2 and "nothing changed" in out, out
    assert (home / ".env").read_bytes() == before
    assert not [c for c in apis.calls if c[1] == "/github/credentials/revoke"]


def test_the_new_token_is_written_and_the_old_one_revoked_unauthenticated(home: Path, apis: FakeAPIs) -> None:
    code, out = _rotate(home, NEW + "\n", "--revoke-old")
    assert code == 0, out
    assert OLD not in out and NEW not in out
    assert (home / ".env").read_text() == f"# tools\nGITHUB_TOKEN={NEW}\nOTHER=1\n{ENTERPRISE}\n"
    assert (home / ".env").stat().st_mode & 0o777 == 0o600
    revokes = [c for c in apis.calls if c[1] == "/github/credentials/revoke"]
    assert revokes == [("POST", "/github/credentials/revoke", "")]  # no Authorization header
    assert {"credentials": [OLD]} in [json.loads(b) for b in apis.bodies if b]
    assert ("GET", "/github/user", OLD) in apis.calls  # the proof: the old token is refused afterwards
    assert "refused by its issuer" in out, out
    assert rotations.state_of(rotations.load(str(home), os.environ), CRED) == rotations.ROTATED
