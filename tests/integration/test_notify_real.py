"""``--notify`` across a real ``contain`` -> ``restore`` on a real gateway (real keyring).

A receiver on loopback (http.server, in this test) takes a JSON webhook, an ntfy topic and a target that
answers 500. It must get exactly one message per state change (contain: started, contained with the
journal head; restore: started, restored; then a drill on the restored gateway, in the same session:
started, drill-passed), none carrying a secret (the gateway token old and new, the
bot tokens: every body is scanned); the 500 target costs a warning and a ``notify.failed`` journal
record, never the run. A notify URL through the Telegram channel (its bot token) is refused up front:
exit 2, one line, the gateway untouched.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.harness.configs import TG_ALERTS_TOKEN, TG_DEFAULT_TOKEN, TG_OPS_TOKEN
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import LOOPBACK, port_is_open, wait_until
from tests.harness.risk import accept_open_dms
from tests.harness.secret_service import SecretService

from moltir.engine.journal import line_hash
from moltir.openclaw import discover


class Receiver:
    """Records every POST (path, headers, body); ``/fail`` answers 500."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def events(self, path: str) -> list[str]:
        out = []
        for p, headers, body in self.got:
            if p != path:
                continue
            if path.startswith("/hook"):
                out.append(json.loads(body)["event"])
            else:
                out.append(headers["tags"].split(",")[1])
        return out


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def _moltir(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _keyring_token(env: dict[str, str], entry: str) -> str:
    code = "import keyring, sys; v = keyring.get_password('moltir', sys.argv[1]); print(v or '')"
    return subprocess.run([sys.executable, "-c", code, entry], env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip()


# The trigger and the notifications depend on no release difference (no capability row): one release
# keeps the suite within its time budget; 2026.1.29 passed too when this was written.
@pytest.mark.parametrize("openclaw_release", ["2026.9.6"], indirect=True, ids=["oc2026.9.6"])
def test_one_message_per_state_change_and_no_secret(openclaw_home: OpenClawHome, secret_service: SecretService,
                                                    receiver: Receiver) -> None:
    home = openclaw_home
    home.env.update(secret_service.env)
    home.env["MOLTIR_HOME"] = str(home.root / "moltir-home")
    env = dict(home.env)
    old = home.token
    base = f"http://{LOOPBACK}:{receiver.port}"
    hook = "/hook?key=notify-url-secret-42"  # a webhook key: never in the journal, lock or output
    notify = ["--notify", f"{base}{hook}", "--notify", f"ntfy+http://{LOOPBACK}:{receiver.port}/incidents",
              "--notify", f"{base}/fail"]
    gw = Gateway(home).start()
    try:
        # through the channel contain disables: refused before anything, nothing changed
        config_before = home.config_path.read_bytes()
        refused = _moltir(env, home.root, "contain", "--yes", "--notify",
                          f"https://api.telegram.org/bot{TG_DEFAULT_TOKEN}/sendMessage?chat_id=1")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "carries this install's credential" in lines[0], refused.stderr
        assert TG_DEFAULT_TOKEN not in refused.stdout + refused.stderr
        assert home.config_path.read_bytes() == config_before and port_is_open(home.port)
        cases = home.root / "moltir-home" / "cases"
        assert not cases.exists() or not any(cases.iterdir())

        contain = _moltir(env, home.root, "contain", "--yes", "--reason", "notify test", *notify)
        out = contain.stdout + contain.stderr
        assert contain.returncode == 0, out
        assert "Traceback" not in out
        assert "notification 'started' to http://127.0.0.1" in contain.stderr and "HTTP 500" in contain.stderr
        wait_until(lambda: not port_is_open(home.port), 30, what="gateway down after contain")
        assert receiver.events(hook) == ["started", "contained"]
        assert receiver.events("/incidents") == ["started", "contained"]
        assert [p for p, _, _ in receiver.got].count("/fail") == 2
        status = moltir_json(_moltir(env, home.root, "status", "--json").stdout)
        case = Path(status["case"]["dir"])
        raw = (case / "journal.jsonl").read_bytes().splitlines()
        records = [json.loads(line) for line in raw]
        done_at = max(i for i, r in enumerate(records) if r["event"] == "run.done")
        contained = json.loads(next(b for p, _, b in receiver.got if p == hook and b"contained" in b))
        assert contained["journal_head"] == line_hash(raw[done_at])  # the head right after the run
        assert contained["case_id"] == status["case"]["id"]
        failed = [r for r in records if r["event"] == "notify.failed"]
        assert [r["notify_event"] for r in failed] == ["started", "contained"]
        assert all(r["target"] == base and "500" in r["error"] for r in failed)
        assert len([r for r in records if r["event"] == "notify.sent"]) == 4

        restore = _moltir(env, home.root, "restore", "--yes", *notify, *accept_open_dms(home.release.id))
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert receiver.events(hook) == ["started", "contained", "started", "restored"]
        assert receiver.events("/incidents") == ["started", "contained", "started", "restored"]
        entry = f"gateway-token:{discover(env=env).key}"
        new = _keyring_token(env, entry)
        assert new and new != old

        # a drill on the restored gateway (same session, no new start): its own started / drill-passed
        drill = _moltir(env, home.root, "drill", "--yes", *notify)
        assert drill.returncode == 0, drill.stdout[-4000:] + drill.stderr[-4000:]
        assert receiver.events(hook)[4:] == ["started", "drill-passed"]
        assert receiver.events("/incidents")[4:] == ["started", "drill-passed"]
        drilled = json.loads(next(b for p, _, b in receiver.got if p == hook and b"drill-passed" in b))
        assert drilled["command"] == "drill" and drilled["case_id"] and drilled["case_id"] != status["case"]["id"]
        newest = _keyring_token(env, entry)
        assert newest and newest not in (new, old)

        # not one secret in any body (nor a header), whatever the target
        for path, headers, body in receiver.got:
            blob = body.decode("utf-8", "replace") + json.dumps(headers)
            for secret in (old, new, newest, TG_DEFAULT_TOKEN, TG_OPS_TOKEN, TG_ALERTS_TOKEN):
                assert secret not in blob, f"a secret reached the receiver at {path}"
        texts = [out, restore.stdout + restore.stderr, drill.stdout + drill.stderr,
                 (case / "journal.jsonl").read_text(), (case / "case.json").read_text()]
        assert not any("notify-url-secret-42" in t for t in texts)
        restored = json.loads(next(b for p, _, b in receiver.got if p == hook and b"restored" in b))
        assert set(restored) <= {"schema", "event", "title", "command", "case_id", "host", "install",
                                 "new_fingerprint", "old_fingerprint", "journal_head", "step", "exit_code"}
    finally:
        gw.stop()
