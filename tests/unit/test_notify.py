"""``--notify``: URL parsing and refusals, sending (ntfy, JSON webhook, Apprise through an in-process fake
module), failures that never raise (receiver down, 500, a redirect, a timeout), and the notifier's
one-message-per-state-change bookkeeping. The real run: tests/integration/test_notify_real.py."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moltir import notify
from moltir.commands import notifying
from moltir.errors import EXIT_ENV, EXIT_USAGE, MoltirError
from moltir.redaction import register


@pytest.mark.parametrize(("url", "kind", "sent_to"), [
    ("ntfy://ntfy.example.org/alerts", "ntfy", "https://ntfy.example.org/alerts"),
    ("ntfy+http://127.0.0.1:8080/alerts", "ntfy", "http://127.0.0.1:8080/alerts"),
    ("https://ntfy.sh/my-topic", "ntfy", "https://ntfy.sh/my-topic"),
    ("https://ntfy.example.org/t", "ntfy", "https://ntfy.example.org/t"),
    ("https://hooks.example.org/in/abc?key=s3cr3t", "webhook", "https://hooks.example.org/in/abc?key=s3cr3t"),
    ("http://127.0.0.1:9/x", "webhook", "http://127.0.0.1:9/x"),
])
def test_parse_built_in(url: str, kind: str, sent_to: str) -> None:
    target = notify.parse(url)
    assert (target.kind, target.url) == (kind, sent_to)
    for text in (target.shown, repr(target), json.dumps(target.describe())):
        assert "s3cr3t" not in text


@pytest.mark.parametrize(("url", "why"), [
    ("", "empty URL"),
    ("not a url", "spaces or control characters"),
    ("hooks.example.org/x", "no scheme"),
    ("https://", "no host"),
    ("ntfy://ntfy.sh", "needs a host and a topic"),
    ("https://ntfy.sh/", "needs a topic"),
    ("https://h.example:99999/x", "not a URL"),
    ("https://h.example/\x1b[2J", "control characters"),
    ("https://h.example/" + "a" * 3000, "at most 2048"),
])
def test_parse_refuses_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(MoltirError) as info:
        notify.parse(url)
    assert info.value.exit_code == EXIT_USAGE and why in info.value.message
    assert "\x1b" not in info.value.message


def test_apprise_url_without_apprise_is_an_environment_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # import fails
    with pytest.raises(MoltirError) as info:
        notify.parse("slack://T000/B000/XXXX")
    assert info.value.exit_code == EXIT_ENV and "needs Apprise" in info.value.message
    assert "XXXX" not in info.value.one_line()


class _FakeApprise:
    sent: list[tuple[str, str, str]] = []

    def __init__(self) -> None:
        self.urls: list[str] = []

    def add(self, url: str) -> bool:
        if url.startswith("bogus://"):
            return False
        self.urls.append(url)
        return True

    def notify(self, body: str, title: str) -> bool:
        _FakeApprise.sent.append((self.urls[0], title, body))
        return not self.urls[0].startswith("mailto://down")


def test_apprise_url_with_apprise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", types.SimpleNamespace(Apprise=_FakeApprise))
    _FakeApprise.sent.clear()
    target = notify.parse("slack://T000/B000/XXXX")
    assert target.kind == "apprise" and target.shown == "slack://…"  # its "host" may be a token
    msg = notify.Message("contained", "moltir contain: contained", {"case_id": "c1"})
    assert notify.send(target, msg) == ""
    assert _FakeApprise.sent == [("slack://T000/B000/XXXX", "moltir contain: contained",
                                  "moltir contain: contained\ncase_id: c1")]
    assert notify.send(notify.parse("mailto://down@example.org"), msg) == "Apprise could not deliver it"
    with pytest.raises(MoltirError) as info:
        notify.parse("bogus://x")
    assert info.value.exit_code == EXIT_USAGE and "Apprise does not accept" in info.value.message


def test_at_file_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "urls"
    f.write_text("# where the alerts go\nntfy://ntfy.sh/a\n\nhttps://hooks.example.org/x\n")
    got = notify.targets(["@" + str(f), "https://hooks.example.org/x"])
    assert [t.kind for t in got] == ["ntfy", "webhook"]
    with pytest.raises(MoltirError) as info:
        notify.targets(["@" + str(tmp_path / "missing")])
    assert info.value.exit_code == EXIT_USAGE and "cannot read it" in info.value.message
    (tmp_path / "empty").write_text("# nothing\n")
    with pytest.raises(MoltirError, match="names no URL"):
        notify.targets(["@" + str(tmp_path / "empty")])
    with pytest.raises(MoltirError, match="at most 8"):
        notify.targets([f"https://h.example/{i}" for i in range(9)])


def test_credential_in_url_raw_and_encoded() -> None:
    secrets = {"channels.telegram.botToken": "123456789:AAFakeTokenFakeToken"}
    assert notifying_check("https://api.telegram.org/bot123456789:AAFakeTokenFakeToken/sendMessage", secrets)
    assert notifying_check("tgram://123456789%3AAAFakeTokenFakeToken/555", secrets)
    assert not notifying_check("https://api.telegram.org/bot999:Other/sendMessage", secrets)


def notifying_check(url: str, secrets: dict[str, str]) -> str:
    return notify.credential_in_url(url, secrets)


class _Install:
    key = "k" * 16

    def __init__(self, secrets: dict[str, str] | None) -> None:
        self.secrets = secrets


def test_check_targets_refuses_the_channel_being_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifying, "_install_secrets",
                        lambda install: ({"channels.telegram.botToken": "123456789:AAFakeTokenFakeToken"}, True))
    with pytest.raises(MoltirError) as info:
        notifying.check_targets(_Install(None), ["https://api.telegram.org/bot123456789:AAFakeTokenFakeToken/x"])
    assert info.value.exit_code == EXIT_USAGE
    assert "channels.telegram.botToken" in info.value.message and "AAFake" not in info.value.one_line()
    assert notifying.check_targets(_Install(None), ["https://api.telegram.org/bot1:Other/x"])  # another bot: fine
    # credentials unreadable: every Telegram bot URL is refused, it cannot be told apart
    monkeypatch.setattr(notifying, "_install_secrets", lambda install: ({}, False))
    with pytest.raises(MoltirError, match="could not be read"):
        notifying.check_targets(_Install(None), ["https://api.telegram.org/bot1:Other/x"])
    assert notifying.check_targets(_Install(None), []) == []


# ---- sending ------------------------------------------------------------------------------------

class _Server:
    def __init__(self, status: int = 200, location: str = "") -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.got.append((self.path, dict(self.headers.items()), body))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def test_webhook_and_ntfy_bodies(server: _Server) -> None:
    register("gw-token-abcdef123456")
    msg = notify.Message("contained", "moltir contain: contained (case c1)",
                         {"case_id": "c1", "journal_head": "ab" * 32, "oops": "gw-token-abcdef123456"})
    assert notify.send(notify.parse(server.url + "/hook"), msg) == ""
    assert notify.send(notify.parse(server.url.replace("http://", "ntfy+http://") + "/topic"), msg) == ""
    (p1, h1, b1), (p2, h2, b2) = server.got
    doc = json.loads(b1)
    assert p1 == "/hook" and h1["Content-Type"] == "application/json"
    assert doc["schema"] == "moltir.notify/1" and doc["event"] == "contained" and doc["journal_head"] == "ab" * 32
    assert p2 == "/topic" and h2["Title"] == "moltir contain: contained (case c1)" and h2["Tags"] == "moltir,contained"
    assert b2.decode().startswith("moltir contain: contained (case c1)\ncase_id: c1\n")
    for body in (b1, b2):  # a registered secret that slipped into a field is redacted on the way out
        assert b"gw-token-abcdef123456" not in body


def test_failures_are_strings_never_raised() -> None:
    msg = notify.Message("started", "t", {})
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert "not reachable" in notify.send(notify.parse(f"http://127.0.0.1:{closed}/x"), msg)
    for status, location in ((500, ""), (302, "http://127.0.0.1:1/elsewhere")):
        srv = _Server(status, location)
        try:
            assert notify.send(notify.parse(srv.url + "/x"), msg) == f"HTTP {status} from {srv.url}"
            assert len(srv.got) == 1  # a redirect is not followed
        finally:
            srv.httpd.shutdown()
            srv.httpd.server_close()


def test_a_receiver_that_hangs_costs_the_time_bound_only() -> None:
    with socket.socket() as listener:  # accepts (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        start = time.monotonic()
        err = notify.send(notify.parse(f"http://127.0.0.1:{listener.getsockname()[1]}/x"),
                          notify.Message("started", "t", {}), timeout=0.5)
        assert err and time.monotonic() - start < 5
        assert "timed out" in err


# ---- the notifier --------------------------------------------------------------------------------

class _Case:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.appended: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class J:
            head = "f" * 64

            def append(self, event: str, **fields: Any) -> None:
                outer.appended.append((event, fields))

        self._journal = J()

    def journal(self) -> Any:
        return self._journal


def _notifier(kind: str, fail: str = "") -> tuple[notifying.Notifier, list[notify.Message], list[str]]:
    sent: list[notify.Message] = []
    notes: list[str] = []

    def send(target: notify.Target, msg: notify.Message) -> str:
        sent.append(msg)
        return "HTTP 500 from x" if msg.event == fail else ""

    n = notifying.Notifier([notify.parse("https://hooks.example.org/a")], kind, "key1", notes.append, send)
    return n, sent, notes


def test_one_message_per_state_change(tmp_path: Path) -> None:
    n, sent, notes = _notifier("contain", fail="started")
    events: list[str] = []
    emit = n.wrap(lambda e, f: events.append(e))
    emit("run.start", {"case_id": "c1"})
    emit("step.start", {"step": "a"})
    emit("step.done", {"step": "a"})
    emit("step.failed", {"step": "b", "error": "boom with a path /secret/place"})
    emit("run.done", {})
    case = _Case(tmp_path)
    (tmp_path / "restore.json").write_text(json.dumps({"token": {"new_fingerprint": "1234abcd",
                                                                 "old_fingerprint": "deadbeef", "x": "y"}}))
    n.finish(types.SimpleNamespace(case_id="c1", status="ok"), case)
    assert events == ["run.start", "step.start", "step.done", "step.failed", "run.done"]  # passed on
    assert [m.event for m in sent] == ["started", "step-failed", "contained"]
    assert sent[1].fields["step"] == "b" and "boom" not in json.dumps(sent[1].payload())
    assert sent[2].fields["journal_head"] == "f" * 64 and sent[2].fields["new_fingerprint"] == "1234abcd"
    assert notes == ["notification 'started' to https://hooks.example.org failed: HTTP 500 from x; the run goes on"]
    assert [e for e, _ in case.appended] == ["notify.failed", "notify.sent", "notify.sent"]
    assert case.appended[0][1]["error"] == "HTTP 500 from x"


@pytest.mark.parametrize(("kind", "status", "last"), [
    ("restore", "ok", "restored"), ("drill", "ok", "drill-passed"), ("drill", "failed", "drill-failed"),
    ("contain", "interrupted", "interrupted"), ("contain", "failed", None), ("contain", "noop", None),
])
def test_outcome_messages(tmp_path: Path, kind: str, status: str, last: str | None) -> None:
    n, sent, _ = _notifier(kind)
    n.finish(types.SimpleNamespace(case_id="c9", status=status), _Case(tmp_path))
    assert [m.event for m in sent] == ([last] if last else [])


def test_drill_refused_before_it_started_is_a_failed_drill() -> None:
    n, sent, _ = _notifier("drill")
    n.refused(MoltirError("no keyring", exit_code=3))
    assert [(m.event, m.fields["exit_code"]) for m in sent] == [("drill-failed", 3)]


def test_no_targets_sends_nothing(tmp_path: Path) -> None:
    n = notifying.Notifier([], "contain", "k", lambda s: None)
    n.wrap(lambda e, f: None)("run.start", {"case_id": "c"})
    n.finish(types.SimpleNamespace(case_id="c", status="ok"), _Case(tmp_path))
    assert n.records == []


# ---- the CLI: bad input is one line, exit 2, nothing changed ----------------------------------------

def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path / "home"), "MOLTIR_HOME": str(tmp_path / "mh"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def test_cli_bad_notify_url_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    config = state / "openclaw.json"
    config.write_text('{ gateway: { mode: "local", auth: { token: "t-1234567890abc" } }, channels: { telegram: '
                      '{ botToken: "123456789:AAFakeTokenFakeTokenFake", dmPolicy: "open" } } }')
    before = config.read_bytes()
    for url, code, words in (("gopher://x y", 2, "spaces"),
                             ("https://api.telegram.org/bot123456789:AAFakeTokenFakeTokenFake/sendMessage", 2,
                              "carries this install's credential")):
        got = _cli(tmp_path, "contain", "--yes", "--state-dir", str(state), "--notify", url)
        assert got.returncode == code, got.stdout + got.stderr
        lines = got.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in got.stderr
        assert "AAFakeToken" not in got.stderr + got.stdout
        assert config.read_bytes() == before and not (tmp_path / "mh" / "cases").exists()
    # --all-profiles checks the URL against every install's credentials before anything runs
    url = "https://api.telegram.org/bot123456789:AAFakeTokenFakeTokenFake/sendMessage"
    got = _cli(tmp_path, "contain", "--all-profiles", "--yes", "--notify", url)
    assert got.returncode == 2 and "carries this install's credential" in got.stderr, got.stderr
    assert "AAFakeToken" not in got.stderr + got.stdout and "Traceback" not in got.stderr
    assert config.read_bytes() == before and not (tmp_path / "mh" / "cases").exists()


def test_all_profiles_one_message_per_state_change_per_profile(tmp_path: Path, server: _Server) -> None:
    """contain --all-profiles --notify: each install's run sends its own started / outcome messages, each
    naming its profile; a failed step of one profile is that profile's message only."""
    home = tmp_path / "home"
    for name in ("main", "rescue"):
        state = home / f".openclaw-{name}"
        state.mkdir(parents=True)
        token = f"t-{name}-1234567890"
        (state / "openclaw.json").write_text('{ gateway: { mode: "local", auth: { token: "' + token + '" } } }')
    rb = tmp_path / "rb.json5"
    rb.write_text(json.dumps({"name": "contain", "steps": [{"id": "nap", "action": "test.sleep"}]}))
    env = {**os.environ, "HOME": str(home), "MOLTIR_HOME": str(tmp_path / "mh"), "MOLTIR_ENABLE_TEST_ACTIONS": "1",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    for var in ("OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_PROFILE", "OPENCLAW_HOME"):
        env.pop(var, None)
    got = subprocess.run([sys.executable, "-m", "moltir", "contain", "--all-profiles", "--yes", "--json",
                          "--runbook", str(rb), "--notify", server.url + "/hook"], env=env, capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    docs = [json.loads(body) for _, _, body in server.got]
    by_profile: dict[str, list[str]] = {}
    for doc in docs:
        by_profile.setdefault(doc["profile"], []).append(doc["event"])
        assert doc["command"] == "contain" and doc["case_id"] and f"[{doc['profile']}]" in doc["title"]
    assert by_profile == {"main": ["started", "contained"], "rescue": ["started", "contained"]}
    cases = {d["profile"]: d["case_id"] for d in docs}
    assert cases["main"] != cases["rescue"]
    for doc in docs:  # no token of either install, no path
        assert "1234567890" not in json.dumps(doc) and str(home) not in json.dumps(doc)


def test_scheduled_drill_keeps_its_urls_out_of_the_unit(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from moltir.cli import cli

    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    base = ["--state-dir", str(state), "drill", "schedule"]
    runner = CliRunner()
    bad = runner.invoke(cli, [*base, "install", "--no-activate", "--notify", "ntfy://ntfy.sh"])
    assert bad.exit_code == EXIT_USAGE and "needs a host and a topic" in bad.output
    drills = tmp_path / "moltir-home" / "drills"
    assert not drills.exists() or not any(drills.iterdir())
    url = "https://hooks.example.org/in?key=s3cr3t"
    out = runner.invoke(cli, [*base, "install", "--print", "--notify", url, "--notify", url])
    assert out.exit_code == 0, out.output
    kept = next((tmp_path / "moltir-home" / "drills").glob("*.notify"))
    assert kept.read_text() == url + "\n" and kept.stat().st_mode & 0o077 == 0
    assert "s3cr3t" not in out.output and f"--notify @{kept}" in out.output
    status = runner.invoke(cli, [*base, "status", "--json"])
    assert json.loads(status.output)["data"]["notify"] == str(kept)
    again = runner.invoke(cli, [*base, "install", "--print"])  # installed again without --notify: forgotten
    assert again.exit_code == 0 and not kept.exists() and "--notify" not in again.output


def test_the_recorded_command_line_masks_notify_urls() -> None:
    from moltir.cli.run import command_line

    got = command_line(["contain", "--yes", "--notify", "https://h.example/in?key=s3cr3t", "--notify=ntfy://n/t0p",
                        "--notify", "@/etc/moltir/urls", "--reason", "x"])
    assert got == "moltir contain --yes --notify <url> --notify=<url> --notify @/etc/moltir/urls --reason x"


def test_a_token_in_an_apprise_url_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tgram://BOTTOKEN/CHAT``: the bot token sits where a host would; no message may quote it (urlsplit's
    own error does: 'Port could not be cast to integer value as ...')."""
    token = "123456789:AAFakeTokenFakeTokenFake"
    monkeypatch.setitem(sys.modules, "apprise", None)
    with pytest.raises(MoltirError) as info:
        notify.parse(f"tgram://{token}/555")
    assert info.value.exit_code == EXIT_ENV and "AAFake" not in info.value.one_line()
    with pytest.raises(MoltirError) as info:
        notify.parse(f"https://{token}@h.example:x/")
    assert info.value.exit_code == EXIT_USAGE and "AAFake" not in info.value.one_line()
    # the channel's own token: refused as such (exit 2) before Apprise is even needed
    monkeypatch.setattr(notifying, "_install_secrets", lambda install: ({"channels.telegram.botToken": token}, True))
    with pytest.raises(MoltirError) as info:
        notifying.check_targets(_Install(None), [f"tgram://{token}/555"])
    assert info.value.exit_code == EXIT_USAGE and "channels.telegram.botToken" in info.value.message
    assert "AAFake" not in info.value.one_line() and "tgram://…" in info.value.message
