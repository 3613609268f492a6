"""A fake Telegram Bot API on loopback, usable two ways.

* Releases with ``apiRoot`` (``Facts.api_root``: 2026.5.28 and later of the installed ones):
  point ``channels.telegram.apiRoot`` at :attr:`FakeTelegram.url`.
* 2026.1.29 and 2026.2.25 reject ``apiRoot``; set ``channels.telegram.proxy`` to the same URL
  and give the gateway ``NODE_EXTRA_CA_CERTS`` = the test CA: the server then acts as an HTTP
  CONNECT proxy, terminates TLS for ``api.telegram.org`` with a leaf signed by that CA and answers the same
  fake API inside the tunnel. CONNECTs to any other host are refused (403) and recorded in
  :attr:`FakeTelegram.refused`, so a test can prove nothing tried to leave the machine.

With a reachable fake, telegram reaches ``connected: true`` and SIGTERM stops the gateway in
~0.3 s; with an unreachable Telegram, 2026.9.6 hangs for 325 s at shutdown (research §4).
"""

from __future__ import annotations

import ssl
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.harness.servers import JsonHandler, LoopbackServer

TELEGRAM_HOST = "api.telegram.org"
GET_UPDATES_HOLD_S = 2.0


class FakeTelegram(LoopbackServer):
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(_BotApiHandler)
        self.tls = tls
        self.calls: list[tuple[str, str]] = []           # (bot id, method)
        self.token_calls: list[tuple[str, str]] = []     # (the whole bot token, method), in order
        self.refused_tokens: set[str] = set()            # answered 401 Unauthorized (a revoked token)
        self.webhooks: dict[str, str] = {}               # bot id -> webhook URL getWebhookInfo reports
        self.refused: list[str] = []                     # CONNECT targets we refused
        self.tunnels = 0                                 # CONNECTs to api.telegram.org served
        self._updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._update_id = 1000

    @classmethod
    def with_tls(cls, cert: Path, key: Path) -> FakeTelegram:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        return cls(tls=ctx)

    def tokens_for(self, method: str) -> list[str]:
        """Every token ``method`` was called with, in order."""
        with self.lock:
            return [t for t, m in self.token_calls if m == method]

    def methods(self) -> list[str]:
        with self.lock:
            return [m for _, m in self.calls]

    def push_update(self, update: dict[str, Any], bot_id: str) -> None:
        """Deliver ``update`` (e.g. a DM ``{"message": {...}}``) on the bot's next getUpdates."""
        with self.lock:
            self._update_id += 1
            self._updates[bot_id].append({"update_id": self._update_id, **update})

    def take_updates(self, bot_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return self._updates.pop(bot_id, [])


def _bot_user(bot_id: str) -> dict[str, Any]:
    return {"id": int(bot_id) if bot_id.isdigit() else 123456789, "is_bot": True,
            "first_name": "Fake Test Bot", "username": f"fake_test_bot_{bot_id}"[:32],
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}


class _BotApiHandler(JsonHandler):
    server: FakeTelegram

    def do_GET(self) -> None:
        self._answer({})

    def do_POST(self) -> None:
        self._answer(self.read_json())

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0]
        if host != TELEGRAM_HOST or self.server.tls is None:
            with self.server.lock:
                self.server.refused.append(self.path)
            self.send_error(403, "moltir test proxy: egress refused")
            self.close_connection = True
            return
        self.send_response(200, "Connection Established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls_sock = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        with self.server.lock:
            self.server.tunnels += 1
        _BotApiHandler(tls_sock, self.client_address, self.server)  # serves the tunnel until closed
        self.close_connection = True

    def _answer(self, body: dict[str, Any]) -> None:
        if self.path.startswith("http://") or self.path.startswith("https://"):
            with self.server.lock:  # plain-HTTP proxy request for some other host
                self.server.refused.append(self.path)
            self.send_error(403, "moltir test proxy: egress refused")
            return
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        token = parts[0][3:] if parts and parts[0].startswith("bot") else ""
        bot_id = token.split(":", 1)[0]
        method = parts[-1] if parts else ""
        with self.server.lock:
            self.server.calls.append((bot_id, method))
            self.server.token_calls.append((token, method))
            refused = token in self.server.refused_tokens
        if refused:
            self.send_json({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
            return
        result: Any = True
        if method == "getMe":
            result = _bot_user(bot_id)
        elif method == "getUpdates":
            result = self.server.take_updates(bot_id)
            if not result:
                hold = min(float(body.get("timeout") or 0), GET_UPDATES_HOLD_S)
                self.server.stopping.wait(hold)
                result = self.server.take_updates(bot_id)
        elif method == "getWebhookInfo":
            with self.server.lock:
                url = self.server.webhooks.get(bot_id, "")
            result = {"url": url, "has_custom_certificate": False, "pending_update_count": 0}
        elif method in ("getMyCommands", "getMyDescription"):
            result = [] if method == "getMyCommands" else {"description": ""}
        elif method == "getChat":
            result = {"id": body.get("chat_id", 0), "type": "private"}
        elif method == "sendMessage":
            result = {"message_id": 1, "date": 0, "chat": {"id": body.get("chat_id", 0), "type": "private"},
                      "text": body.get("text", "")}
        self.send_json({"ok": True, "result": result})
