"""moltir-secret: OpenClaw's exec secret-provider protocol over a keyring backend."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moltir import keystore, secret_helper

HERE = Path(__file__).parent
BACKEND = "keyring_fakes.FileKeyring"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kr.json"
    path.write_text(json.dumps({"moltir/gateway-token:abc": "t" * 64, "other/gateway-token:abc": "o" * 64}))
    monkeypatch.setenv("MOLTIR_TEST_KEYRING_FILE", str(path))
    monkeypatch.syspath_prepend(str(HERE))
    return path


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], request: object | str,
        *args: str) -> tuple[int, str, str]:
    raw = request if isinstance(request, str) else json.dumps(request)
    monkeypatch.setattr(sys, "stdin", io.StringIO(raw))
    rc = secret_helper.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_answers_known_ids_and_reports_unknown_ones(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, {"protocolVersion": 1, "provider": "moltir",
                                             "ids": ["gateway-token:abc", "gateway-token:nope", "../x"]},
                       "--backend", BACKEND)
    assert rc == 0 and err == ""
    response = json.loads(out)
    assert response == {"protocolVersion": 1, "values": {"gateway-token:abc": "t" * 64},
                        "errors": {"gateway-token:nope": {"code": "NOT_FOUND"},
                                   "../x": {"code": "INVALID_ID"}}}


def test_no_errors_key_when_everything_resolves(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(monkeypatch, capsys, {"protocolVersion": 1, "ids": ["gateway-token:abc"]},
                     "--backend", BACKEND, "--service", "other")
    assert rc == 0
    assert json.loads(out) == {"protocolVersion": 1, "values": {"gateway-token:abc": "o" * 64}}


@pytest.mark.parametrize(("request_", "words"), [
    ("not json", "not JSON"),
    ("[1]", "JSON object"),
    ({"protocolVersion": 2, "ids": []}, "protocolVersion 2"),
    ({"protocolVersion": 1, "ids": "x"}, "list of strings"),
])
def test_bad_requests_exit_2_with_one_line(store: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], request_: object,
                                           words: str) -> None:
    rc, out, err = run(monkeypatch, capsys, request_, "--backend", BACKEND)
    assert rc == 2 and out == ""
    assert words in err and err.count("\n") == 1


def test_unknown_argument_is_exit_2(store: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, {"protocolVersion": 1, "ids": []}, "--bogus")
    assert rc == 2 and out == "" and "usage" in err


def test_locked_keyring_exits_1_with_one_line_and_no_output(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MOLTIR_TEST_KEYRING_LOCKED", "1")
    rc, out, err = run(monkeypatch, capsys, {"protocolVersion": 1, "ids": ["gateway-token:abc"]},
                       "--backend", BACKEND)
    assert rc == 1 and out == ""
    assert "KeyringLocked" in err and err.count("\n") == 1
    assert "t" * 64 not in err


def test_unloadable_backend_exits_1(store: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(monkeypatch, capsys, {"protocolVersion": 1, "ids": ["a"]},
                       "--backend", "no.such.Backend")
    assert rc == 1 and out == "" and "cannot load keyring backend" in err


def test_session_bus_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    secret_helper._default_bus()
    assert "DBUS_SESSION_BUS_ADDRESS" not in os.environ
    (tmp_path / "bus").write_text("")
    secret_helper._default_bus()
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={tmp_path}/bus"


def test_the_wrapper_runs_isolated_and_imports_nothing_heavy(tmp_path: Path) -> None:
    """The generated launcher, run as OpenClaw runs it: no shell, a bare environment."""
    wrapper = keystore.install_helper_wrapper({"MOLTIR_HOME": str(tmp_path / "mh")})
    home = tmp_path / "home"
    cfg = home / ".config" / "python_keyring"
    cfg.mkdir(parents=True)
    (cfg / "keyringrc.cfg").write_text(f"[backend]\ndefault-keyring={BACKEND}\nkeyring-path={HERE}\n")
    (home / "fake-keyring.json").write_text(json.dumps({"moltir/gateway-token:abc": "w" * 64}))
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "PYTHONPATH": "/nonexistent-hijack"}
    request = json.dumps({"protocolVersion": 1, "provider": "moltir", "ids": ["gateway-token:abc"]})
    proc = subprocess.run([str(wrapper)], input=request, capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["values"] == {"gateway-token:abc": "w" * 64}
    # what the helper loads: the standard library and keyring, not moltir's CLI stack
    probe = subprocess.run([sys.executable, "-I", "-c",
                            "import sys, moltir.secret_helper; "
                            "print(sorted(set(sys.modules) & {'click','structlog','psutil','json5',"
                            "'keyring','moltir.cli','moltir.engine.runner','moltir.openclaw'}))"],
                           capture_output=True, text=True, timeout=30)
    assert probe.stdout.strip() == "[]", probe.stderr
