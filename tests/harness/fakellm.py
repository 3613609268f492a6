"""A fake OpenAI-compatible model server (chat completions, SSE or plain JSON) on loopback.

Config for both releases (openclaw-old-run.md §2; 2026.9.6 docs gateway/config-tools/custom-providers.md):
``models.providers.fake = {baseUrl: "<url>/v1", apiKey: "sk-fake", api: "openai-completions",
models: [{id: "fake-model", name: "Fake Model"}]}`` and ``agents.defaults.model.primary: "fake/fake-model"``.
Every reply is :attr:`FakeLLM.reply` (default ``FAKE-REPLY: hello from the fake model``); every
request body is kept in :attr:`FakeLLM.requests`.

Tool calls: put ``(tool_name, arguments)`` pairs in :attr:`FakeLLM.tool_calls` and the next request
whose last message comes from the user is answered with an OpenAI ``tool_calls`` message naming
them (then the queue is empty); the gateway runs the tools for real, sends their results back
(last message role ``tool``), and gets :attr:`FakeLLM.reply`. The tool names the gateway offered
are in each request's ``tools`` (:meth:`FakeLLM.offered_tools`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.harness.servers import JsonHandler, LoopbackServer

MODEL_ID = "fake-model"
PROVIDER_ID = "fake"
DEFAULT_REPLY = "FAKE-REPLY: hello from the fake model"


class FakeLLM(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_LLMHandler)
        self.requests: list[dict[str, Any]] = []
        self.reply = DEFAULT_REPLY
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self.keys: list[tuple[str, str]] = []  # (method + path, the bearer key it came with), in order
        self.refused_keys: set[str] = set()  # answered 401, like a provider that revoked them

    def keys_seen(self) -> list[str]:
        with self.lock:
            return [k for _, k in self.keys]

    def offered_tools(self) -> set[str]:
        """Every tool name the gateway offered the model so far."""
        return {str((t.get("function") or {}).get("name")) for r in self.requests for t in r.get("tools") or []
                if isinstance(t, dict)}

    def take_tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The queued tool calls as OpenAI ``tool_calls`` entries, when this request ends with a user turn."""
        messages = body.get("messages") or []
        last = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
        with self.lock:
            if last != "user" or not self.tool_calls:
                return []
            queued, self.tool_calls = self.tool_calls, []
        n = len(self.requests)
        return [{"id": f"call_fake_{n}_{i}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args)}} for i, (name, args) in enumerate(queued)]

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def provider_config(self) -> dict[str, Any]:
        return {"baseUrl": self.base_url, "apiKey": "sk-fake", "api": "openai-completions",
                "models": [{"id": MODEL_ID, "name": "Fake Model"}]}


class _LLMHandler(JsonHandler):
    server: FakeLLM

    def _key_refused(self, what: str) -> bool:
        auth = self.headers.get("Authorization") or ""
        key = auth[7:] if auth.startswith("Bearer ") else self.headers.get("x-api-key") or ""
        with self.server.lock:
            self.server.keys.append((what, key))
            refused = key in self.server.refused_keys
        if refused:
            self.send_json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                      "code": "invalid_api_key"}}, status=401)
        return refused

    def do_GET(self) -> None:
        if self._key_refused(f"GET {self.path}"):
            return
        if self.path.rstrip("/").endswith("/models"):
            self.send_json({"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "fake"}]})
        else:
            self.send_json({"error": {"message": "not found"}}, status=404)

    def do_POST(self) -> None:
        body = self.read_json()
        if self._key_refused(f"POST {self.path}"):
            return
        with self.server.lock:
            self.server.requests.append(body)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json({"error": {"message": "not found"}}, status=404)
            return
        text = self.server.reply
        calls = self.server.take_tool_calls(body)
        cid, created = f"chatcmpl-fake-{len(self.server.requests)}", int(time.time())
        model = body.get("model", MODEL_ID)
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if calls:
            self._send_tool_calls(body, cid, created, model, usage, calls)
            return
        if not body.get("stream"):
            self.send_json({"id": cid, "object": "chat.completion", "created": created, "model": model,
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text}}],
                            "usage": usage})
            return
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": usage},
        ]
        self._send_sse(chunks)

    def _send_tool_calls(self, body: dict[str, Any], cid: str, created: int, model: str,
                         usage: dict[str, int], calls: list[dict[str, Any]]) -> None:
        if not body.get("stream"):
            self.send_json({"id": cid, "object": "chat.completion", "created": created, "model": model,
                            "choices": [{"index": 0, "finish_reason": "tool_calls",
                                         "message": {"role": "assistant", "content": None, "tool_calls": calls}}],
                            "usage": usage})
            return
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        deltas = [{**c, "index": i} for i, c in enumerate(calls)]
        self._send_sse([
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": deltas},
                                  "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            {**base, "choices": [], "usage": usage},
        ])

    def _send_sse(self, chunks: list[dict[str, Any]]) -> None:
        payload = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
