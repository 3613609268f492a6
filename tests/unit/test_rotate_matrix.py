"""``moltir rotate channels.matrix.accessToken``: the new token is validated with ``whoami`` at the
homeserver the config sets, stored (keyring + SecretRef where the release's surface doc lists the path),
and ``--revoke-old`` logs out the OLD token's device only (``POST /logout``, never ``/logout/all``),
against a loopback fake homeserver (tests/harness/fakechat.py) and an in-process keyring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from click.testing import CliRunner
from tests.harness.fakechat import FakeAPIs
from tests.unit import keyring_fakes as fakes
from tests.unit.installed import installed_package

from moltir.cli import cli
from moltir.commands import rotations
from moltir.openclaw import capabilities as capmod
from moltir.openclaw import provider_revoke

OLD = "syt_Ym90_old_AAAAAAAAAAAAAAAA_0001"
NEW = "syt_Ym90_new_BBBBBBBBBBBBBBBB_0002"
GW = "gw-token-0123456789abcdef"
CRED = "channels.matrix.accessToken"


def _config(url: str, version: str = "2026.9.6") -> str:
    return f"""{{
  meta: {{ lastTouchedVersion: "{version}" }},
  gateway: {{ mode: "local", auth: {{ token: "{GW}" }} }},
  channels: {{ matrix: {{ homeserver: "{url}/matrix", accessToken: "{OLD}" }} }},
}}
"""


@pytest.fixture
def apis() -> Iterator[FakeAPIs]:
    with FakeAPIs() as fake:
        fake.good |= {OLD, NEW}
        fake.devices = {OLD: "DEVOLD", NEW: "DEVNEW"}
        yield fake


@pytest.fixture
def home(tmp_path: Path, apis: FakeAPIs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "openclaw.json").write_text(_config(apis.url))
    (state / "openclaw.json").chmod(0o600)
    monkeypatch.setenv("MOLTIR_HOME", str(tmp_path / "moltir"))
    before = keyring.get_keyring()
    keyring.set_keyring(fakes.MemKeyring())
    yield state
    keyring.set_keyring(before)


def _rotate(state: Path, stdin: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["rotate", CRED, "--from-stdin", "--state-dir", str(state), *extra,
                                      "--wait-timeout", "5"], input=stdin)
    return result.exit_code, result.stdout + result.stderr


def _no_value(text: str) -> None:
    for value in (OLD, NEW, GW):
        assert value not in text


def test_matrix_token_is_validated_stored_and_only_the_old_device_logged_out(home: Path, apis: FakeAPIs) -> None:
    before = (home / "openclaw.json").read_bytes()
    code, out = _rotate(home, "syt_refused_CCCCCCCCCCCC\n")
    assert code == 2 and "nothing changed" in out and len(out.strip().splitlines()) == 1, out
    assert (home / "openclaw.json").read_bytes() == before
    code, out = _rotate(home, NEW + "\n", "--revoke-old")
    assert code == 0, out
    _no_value(out)
    assert ("GET", "/matrix/_matrix/client/v3/account/whoami", NEW) in apis.calls  # validated first
    assert ("POST", "/matrix/_matrix/client/v3/logout", OLD) in apis.calls
    assert not [c for c in apis.calls if c[1].endswith("/logout/all")]
    assert NEW in apis.good and OLD not in apis.good  # the new token's session lives on
    assert "logged out" in out and "refused by its issuer" in out, out
    text = (home / "openclaw.json").read_text()
    assert OLD not in text and NEW not in text  # 2026.9.6: a SecretRef
    assert rotations.state_of(rotations.load(str(home), os.environ), CRED) == rotations.ROTATED


def test_a_token_of_the_same_device_is_not_logged_out(apis: FakeAPIs) -> None:
    apis.devices[NEW] = "DEVOLD"  # a refreshed token: logging the device out would end the new one too
    out = provider_revoke.matrix_logout(f"{apis.url}/matrix", OLD, NEW, {})
    assert not out.done and "same device" in out.detail
    assert not [c for c in apis.calls if c[0] == "POST"] and NEW in apis.good


def test_a_same_device_token_is_not_waited_for(home: Path, apis: FakeAPIs) -> None:
    apis.devices[NEW] = "DEVOLD"
    code, out = _rotate(home, NEW + "\n", "--revoke-old", "--wait-timeout", "60")
    assert code == 0 and "same device" in out and "still accepted" in out, out
    whoami_old = [c for c in apis.calls if c == ("GET", "/matrix/_matrix/client/v3/account/whoami", OLD)]
    assert len(whoami_old) == 2  # once before the logout decision, once after: no polling
    assert NEW in apis.good and not [c for c in apis.calls if c[0] == "POST"]


def test_plaintext_before_2026_3_2_and_no_homeserver_is_by_hand(home: Path, apis: FakeAPIs) -> None:
    (home / "openclaw.json").write_text(_config(apis.url, "2026.2.25"))
    code, out = _rotate(home, NEW + "\n")
    assert code == 0, out
    assert NEW in (home / "openclaw.json").read_text()  # no SecretRef there: the 0600 config
    (home / "openclaw.json").write_text(_config(apis.url).replace(f'homeserver: "{apis.url}/matrix", ', ""))
    code, out = _rotate(home, NEW + "\n")
    assert code == 2 and "does not rotate" in out, out


@pytest.mark.parametrize("version", ["2026.1.29", "2026.9.6"])
def test_matrix_secretref_row_matches_the_installed_package(version: str) -> None:
    package = installed_package(version)
    doc = package / "docs" / "reference" / "secretref-credential-surface.md"
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    listed = all(f"`{k}`" in text for k in ("channels.matrix.accessToken", "channels.matrix.accounts.*.accessToken"))
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert caps.matrix_token_secretref is listed
