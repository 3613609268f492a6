"""Small loopback fakes of the Discord, Slack, Matrix (whoami, logout), OpenRouter and OpenAI (models list,
Administration API project keys) HTTP APIs (an http.server on 127.0.0.1) for
``moltir rotate``'s unit tests: they record which credential each call carried and refuse what the test
says is refused. Only what moltir asks is served."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeAPIs:
    """Discord at ``<url>/discord``, Slack at ``<url>/slack``, OpenRouter at ``<url>/openrouter``, OpenAI at
    ``<url>/openai``, a Matrix homeserver at ``<url>/matrix``."""

    def __init__(self) -> None:
        self.good: set[str] = set()  # credentials the fake accepts
        self.management: set[str] = set()  # OpenRouter management keys
        self.labels: dict[str, str] = {}  # OpenRouter key -> label
        self.page_size = 100  # OpenRouter's GET /keys lists 100 keys per page (?offset=N)
        self.admin: set[str] = set()  # OpenAI admin keys
        # OpenAI: project id -> {key id: (key, redacted_value)}; a deleted key leaves ``good``
        self.projects: dict[str, dict[str, tuple[str, str]]] = {}
        self.bodies: list[bytes] = []  # the request bodies, in order (GitHub's revoke carries the tokens)
        # key ids listed only with owner_project_access=any (their owner lost access to the project)
        self.owner_without_access: set[str] = set()
        self.devices: dict[str, str] = {}  # Matrix access token -> device id
        self.calls: list[tuple[str, str, str]] = []  # (method, path, credential)
        self.slack_error: str | None = None  # every Slack call answers ok: false with this error
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.bodies.append(self.rfile.read(length) if length else b"")
                auth = self.headers.get("Authorization") or ""
                cred = auth.split(" ", 1)[1] if " " in auth else ""
                fake.calls.append((self.command, self.path, cred))
                self._answer(*fake.route(self.command, self.path, auth, cred))

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method: str, path: str, auth: str, cred: str) -> tuple[int, Any]:
        if path == "/discord/users/@me":
            ok = auth.startswith("Bot ") and cred in self.good
            return (200, {"id": "1", "username": "bot"}) if ok else (401, {"message": "401: Unauthorized"})
        if path.startswith("/slack/"):
            return 200, self._slack(path.removeprefix("/slack/"), cred)
        if path.startswith("/openrouter/"):
            return self._openrouter(method, path.removeprefix("/openrouter/"), cred)
        if path.startswith("/matrix/_matrix/client/v3/"):
            return self._matrix(method, path.removeprefix("/matrix/_matrix/client/v3/"), cred)
        if path.startswith("/openai/"):
            return self._openai(method, path.removeprefix("/openai/"), cred)
        if path.startswith("/github/"):
            return self._github(method, path.removeprefix("/github/"), auth, cred)
        return 404, {"error": "not served"}

    def _github(self, method: str, path: str, auth: str, cred: str) -> tuple[int, Any]:
        if path == "user" and method == "GET":
            ok = auth.startswith("Bearer ") and cred in self.good
            return (200, {"login": "octo", "id": 1}) if ok else (401, {"message": "Bad credentials"})
        if path == "credentials/revoke" and method == "POST":
            if auth:  # GitHub: "Any authenticated requests will return a 403."
                return 403, {"message": "Forbidden"}
            try:
                listed = json.loads(self.bodies[-1])["credentials"]
            except (ValueError, KeyError, TypeError, IndexError):
                return 422, {"message": "Validation Failed"}
            self.good.difference_update(c for c in listed if isinstance(c, str))
            return 202, {}
        return 404, {"message": "Not Found"}

    def _slack(self, method: str, cred: str) -> dict[str, Any]:
        if self.slack_error:
            return {"ok": False, "error": self.slack_error}
        if cred not in self.good:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True} if cred.startswith("xox") else {"ok": False, "error": "not_allowed_token_type"}
        if method == "apps.connections.open":
            return {"ok": True, "url": "wss://x"} if cred.startswith("xapp") else \
                {"ok": False, "error": "not_allowed_token_type"}
        if method == "auth.revoke":
            self.good.discard(cred)
            return {"ok": True, "revoked": True}
        return {"ok": False, "error": "unknown_method"}

    def _openrouter(self, method: str, path: str, cred: str) -> tuple[int, Any]:
        if path == "models":
            return 200, {"data": []}  # public: OpenRouter's models list needs no key
        if path == "key":
            return (200, {"data": {"label": self.labels[cred]}}) if cred in self.good else (401, {"error": "no"})
        if cred not in self.management:
            return 401, {"error": {"message": "management key required"}}
        if (path == "keys" or path.startswith("keys?")) and method == "GET":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            offset = int(query.get("offset", ["0"])[0])
            listed = [{"hash": f"h{i}", "label": lab} for i, lab in enumerate(self.labels.values())]
            return 200, {"data": listed[offset:offset + self.page_size]}
        if path.startswith("keys/") and method == "DELETE":
            index = int(path.removeprefix("keys/h"))
            key = list(self.labels)[index]
            self.good.discard(key)
            return 200, {"data": {"success": True}}
        return 404, {"error": "not served"}

    def _matrix(self, method: str, path: str, cred: str) -> tuple[int, Any]:
        if cred not in self.good or cred not in self.devices:
            return 401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Unrecognised access token"}
        if path == "account/whoami" and method == "GET":
            return 200, {"user_id": "@bot:example.org", "device_id": self.devices[cred]}
        if path == "logout" and method == "POST":  # ends every token of that device
            device = self.devices[cred]
            self.good -= {t for t, d in self.devices.items() if d == device}
            return 200, {}
        if path == "logout/all" and method == "POST":
            self.good -= set(self.devices)
            return 200, {}
        return 404, {"errcode": "M_UNRECOGNIZED"}

    def _openai(self, method: str, path: str, cred: str) -> tuple[int, Any]:
        if path == "models":  # OpenAI's models list needs a key
            return (200, {"object": "list", "data": []}) if cred in self.good else \
                (401, {"error": {"code": "invalid_api_key"}})
        if cred not in self.admin:
            return 401, {"error": {"message": "admin key required"}}
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        segs = parts.path.split("/")  # organization/projects[/<id>/api_keys[/<key id>]]
        if segs[:2] != ["organization", "projects"]:
            return 404, {"error": "not served"}
        if len(segs) == 2 and method == "GET":
            return 200, self._page([{"id": p, "object": "organization.project"} for p in self.projects], query)
        keys = self.projects.get(segs[2]) if len(segs) >= 4 and segs[3] == "api_keys" else None
        if keys is None:
            return 404, {"error": "no such project"}
        if len(segs) == 4 and method == "GET":
            every = query.get("owner_project_access") == ["any"]
            return 200, self._page([{"id": k, "object": "organization.project.api_key", "redacted_value": r}
                                    for k, (_v, r) in keys.items()
                                    if every or k not in self.owner_without_access], query)
        if len(segs) == 5 and method == "DELETE" and segs[4] in keys:
            self.good.discard(keys.pop(segs[4])[0])
            return 200, {"object": "organization.project.api_key.deleted", "id": segs[4], "deleted": True}
        return 404, {"error": "not served"}

    def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of an OpenAI list: ``limit`` (at most ``page_size``), ``after=<id>``, ``has_more``."""
        ids = [i["id"] for i in items]
        after = query.get("after", [""])[0]
        start = ids.index(after) + 1 if after in ids else 0
        limit = min(int(query.get("limit", ["20"])[0]), self.page_size)
        page = items[start:start + limit]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(items)}

    def __enter__(self) -> FakeAPIs:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
