"""``moltir rotate --revoke-old`` for OpenAI project keys: the old key is deleted through OpenAI's
Administration API with an admin key (stdin's second line), found among every project's keys by its
``redacted_value``, against a loopback fake of that API (tests/harness/fakechat.py) and an in-process
keyring. No gateway runs here; no value reaches the output."""

from __future__ import annotations

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
from moltir.openclaw import provider_revoke

OLD = "sk-proj-old-AAAAAAAAAAAAAAAAwxyz"
NEW = "sk-proj-new-BBBBBBBBBBBBBBBBqrst"
ENV_OLD = "sk-proj-env-CCCCCCCCCCCCCCCCmnop"
ADMIN = "sk-admin-DDDDDDDDDDDDDDDD"
GW = "gw-token-0123456789abcdef"
CRED = "models.providers.openai.apiKey"


def _config(url: str) -> str:
    return f"""{{
  meta: {{ lastTouchedVersion: "2026.9.6" }},
  gateway: {{ mode: "local", auth: {{ token: "{GW}" }} }},
  models: {{ providers: {{ openai: {{ baseUrl: "{url}/openai", apiKey: "{OLD}" }} }} }},
}}
"""


@pytest.fixture
def apis() -> Iterator[FakeAPIs]:
    with FakeAPIs() as fake:
        fake.good |= {OLD, NEW, ENV_OLD}
        fake.admin.add(ADMIN)
        fake.projects = {
            "proj_a": {"key_a1": ("sk-proj-zzz-unrelated-0000", "sk-proj-zz...0000")},
            "proj_b": {"key_b1": (NEW, "sk-proj-new...qrst"), "key_b2": (OLD, "sk-proj-old...wxyz"),
                       "key_b3": (ENV_OLD, "sk-proj-env...mnop")},
        }
        yield fake


@pytest.fixture
def home(tmp_path: Path, apis: FakeAPIs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "openclaw.json").write_text(_config(apis.url))
    (state / "openclaw.json").chmod(0o600)
    (state / ".env").write_text(f"OPENAI_API_KEY={ENV_OLD}\n")
    (state / ".env").chmod(0o600)
    monkeypatch.setenv("MOLTIR_HOME", str(tmp_path / "moltir"))
    before = keyring.get_keyring()
    keyring.set_keyring(fakes.MemKeyring())
    yield state
    keyring.set_keyring(before)


def _rotate(state: Path, cred: str, stdin: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["rotate", cred, "--from-stdin", "--state-dir", str(state), *extra,
                                      "--wait-timeout", "5"], input=stdin)
    return result.exit_code, result.stdout + result.stderr


def _no_value(text: str) -> None:
    for value in (OLD, NEW, ENV_OLD, ADMIN, GW):
        assert value not in text


def _deletes(apis: FakeAPIs) -> list[tuple[str, str, str]]:
    return [c for c in apis.calls if c[0] == "DELETE"]


def test_the_old_openai_key_is_deleted_with_an_admin_key_from_stdin(home: Path, apis: FakeAPIs) -> None:
    before = (home / "openclaw.json").read_bytes()
    code, out = _rotate(home, CRED, NEW + "\n", "--revoke-old")
    assert code == 2 and "admin key" in out and "nothing changed" in out, out  # the second line is missing
    code, out = _rotate(home, CRED, f"{NEW}\nsk-admin-wrong-EEEEEEEE\n", "--revoke-old")
    assert code == 2 and "refused the management key" in out and "nothing changed" in out, out
    assert len([ln for ln in out.splitlines() if ln.strip()]) == 1, out
    assert (home / "openclaw.json").read_bytes() == before and not _deletes(apis)
    code, out = _rotate(home, CRED, f"{NEW}\n{ADMIN}\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert _deletes(apis) == [("DELETE", "/openai/organization/projects/proj_b/api_keys/key_b2", ADMIN)]
    assert ("GET", "/openai/models", OLD) in apis.calls  # the proof: the old key's models list is refused
    assert "old key is deleted" in out and "refused by its issuer" in out and "401" in out, out
    assert rotations.state_of(rotations.load(str(home), os.environ), CRED) == rotations.ROTATED
    assert OLD not in (home / "openclaw.json").read_text()
    ledger = (Path(os.environ["MOLTIR_HOME"]) / "installs" / "rotations.json").read_text()
    _no_value(ledger)


def test_a_dotenv_openai_key_is_revoked_at_the_configured_base_url(home: Path, apis: FakeAPIs) -> None:
    code, out = _rotate(home, "dotenv.OPENAI_API_KEY", f"{NEW}\n{ADMIN}\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert _deletes(apis) == [("DELETE", "/openai/organization/projects/proj_b/api_keys/key_b3", ADMIN)]
    assert f"OPENAI_API_KEY={NEW}" in (home / ".env").read_text()


def test_every_page_of_projects_and_keys_is_read(apis: FakeAPIs) -> None:
    apis.page_size = 2
    apis.projects = {f"proj_{i}": {f"key_{i}_{j}": (f"sk-proj-o{i}{j}-XXXXXXXXXXXX{i}{j}00",
                                                    f"sk-proj-o{i}{j}...{i}{j}00") for j in range(3)}
                     for i in range(3)}
    apis.projects["proj_2"]["key_2_9"] = (OLD, "sk-proj-old...wxyz")  # the 4th key of the 3rd project
    out = provider_revoke.openai_delete(f"{apis.url}/openai", OLD, ADMIN, {})
    assert out.done, out
    assert _deletes(apis) == [("DELETE", "/openai/organization/projects/proj_2/api_keys/key_2_9", ADMIN)]
    pages = [c[1] for c in apis.calls if c[0] == "GET" and c[1].startswith("/openai/organization/projects?")]
    assert pages == ["/openai/organization/projects?limit=100", "/openai/organization/projects?limit=100&after=proj_1"]
    assert ("/openai/organization/projects/proj_2/api_keys?limit=100&owner_project_access=any&after=key_2_1"
            in [c[1] for c in apis.calls])


def test_a_key_whose_owner_lost_project_access_is_still_found(apis: FakeAPIs) -> None:
    apis.owner_without_access.add("key_b2")   # the old key: listed only with owner_project_access=any
    out = provider_revoke.openai_delete(f"{apis.url}/openai", OLD, ADMIN, {})
    assert out.done, out
    assert _deletes(apis) == [("DELETE", "/openai/organization/projects/proj_b/api_keys/key_b2", ADMIN)]


def test_a_key_that_cannot_be_singled_out_is_left_to_a_person(apis: FakeAPIs) -> None:
    apis.projects["proj_a"]["key_a2"] = ("sk-proj-old-ZZZZZZZZZZZZZZZZwxyz", "sk-proj-old...wxyz")  # same redaction
    out = provider_revoke.openai_delete(f"{apis.url}/openai", OLD, ADMIN, {})
    assert not out.done and "2 project key(s)" in out.detail and "by hand" in out.detail
    apis.projects = {"proj_a": {}}
    out = provider_revoke.openai_delete(f"{apis.url}/openai", OLD, ADMIN, {})
    assert not out.done and "0 project key(s)" in out.detail
    out = provider_revoke.openai_delete(f"{apis.url}/openai", OLD, "sk-admin-wrong", {})
    assert not out.done and "could not read" in out.detail
    assert not _deletes(apis)
    _no_value(out.detail)


@pytest.mark.parametrize(("redacted", "fits"), [
    ("sk-proj-old...wxyz", True), ("sk-pro...xyz", True), ("sk-proj-old\u2026wxyz", True),
    ("sk-proj-old*****wxyz", True), ("sk-proj-new...wxyz", False), ("sk-proj-old...wxya", False),
    ("...wxyz", False), ("sk-proj-old...", False), ("sk-proj-oldwxyz", False), (None, False),
    (OLD[:20] + "..." + OLD[18:], False),  # head and tail overlap: not a redaction of it
])
def test_redacted_value_matching(redacted: object, fits: bool) -> None:
    assert provider_revoke.redacted_matches(redacted, OLD) is fits


def test_plan_shows_that_moltir_revokes_openai_keys(home: Path) -> None:
    result = CliRunner().invoke(cli, ["rotate", "plan", "--json", "--state-dir", str(home)])
    assert result.exit_code == 0, result.output
    creds = {c["id"]: c for c in moltir_json(result.stdout)["credentials"]}
    for cred in (CRED, "dotenv.OPENAI_API_KEY"):
        revoke = creds[cred]["rotation"]["revoke_old"]
        assert revoke["by_moltir"] is True and "admin key" in revoke["needs"]
    text = CliRunner().invoke(cli, ["rotate", "plan", "--state-dir", str(home)]).stdout
    assert "--revoke-old calls the issuer's API (it asks for an OpenAI admin key" in text and "OpenAI admin key" in text
    _no_value(text + result.stdout)
