"""Ask the issuer whether a credential is good, without changing anything there.

* Telegram: ``GET <apiRoot>/bot<token>/getMe`` (``ok: true`` -> good; 401/404 -> refused), through the
  gateway's ``proxy`` when the config sets one (an ``https`` apiRoot then goes through CONNECT).
* A model provider: ``GET <baseUrl>/models`` with the key (``Authorization: Bearer``; Anthropic:
  ``x-api-key`` and ``anthropic-version``); 2xx -> good, 401/403 -> refused.
* Discord: ``GET <api>/users/@me`` with ``Authorization: Bot <token>`` (2xx -> good; 401 -> refused),
  through the channel's ``proxy`` when one is set.
* Slack: ``POST <api>/auth.test`` (bot and user tokens) or ``POST <api>/apps.connections.open`` (the
  app-level token) with ``Authorization: Bearer``; Slack answers HTTP 200 with ``ok: false`` and an
  ``error``: an auth error (``invalid_auth``, ``token_revoked``, ``not_allowed_token_type``...) -> refused,
  any other (``ratelimited``...) -> unreachable.

* Matrix: ``GET <homeserver>/_matrix/client/v3/account/whoami`` with ``Authorization: Bearer``; 2xx with
  a ``user_id`` -> good (and the ``device_id`` the token belongs to), 401 (``M_UNKNOWN_TOKEN``) -> refused.

TLS trusts the system store plus ``NODE_EXTRA_CA_CERTS`` of the install's environment: the CA bundle the
gateway itself is given (a self-hosted Bot API or a TLS-terminating proxy). The credential goes only
into the request to the issuer; nothing here logs it, and the URL in every message has it replaced by
``<token>``.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

GOOD, REFUSED, UNREACHABLE = "good", "refused", "unreachable"
TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Check:
    verdict: str  # good | refused | unreachable
    detail: str  # for people; never the credential
    status: int = 0


def _context(env: Mapping[str, str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    extra = env.get("NODE_EXTRA_CA_CERTS")
    if extra:
        with contextlib.suppress(OSError, ssl.SSLError):  # the gateway would not trust it either
            ctx.load_verify_locations(cafile=extra)
    return ctx


def _opener(env: Mapping[str, str], proxy: str | None) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=_context(env)),
                                       urllib.request.ProxyHandler({"http": proxy, "https": proxy} if proxy else {}))


def call(url: str, method: str, headers: Mapping[str, str], env: Mapping[str, str], proxy: str | None = None,
         body: bytes | None = None) -> tuple[int, Any, str]:
    """One request: (HTTP status or 0, the parsed JSON body or None, a reason for people). Never raises
    for a network or HTTP failure; the credential stays in the headers."""
    if not url.startswith(("http://", "https://")):
        return 0, None, "not an http(s) URL"
    req = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310 (checked)
    try:
        with _opener(env, proxy).open(req, timeout=TIMEOUT_S) as resp:
            raw, status, reason = resp.read(1 << 20), int(resp.status), str(resp.reason)
    except urllib.error.HTTPError as exc:
        raw, status, reason = b"", int(exc.code), str(exc.reason)
        with contextlib.suppress(OSError):
            raw = exc.read(1 << 16)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        return 0, None, f"{type(why).__name__}: {str(why)[:200]}"
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    return status, data, f"HTTP {status} {reason}".strip()


SLACK_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                               "not_allowed_token_type", "no_permission", "org_login_required", "ekm_access_denied"})


def discord(api: str, token: str, env: Mapping[str, str], proxy: str | None = None) -> Check:
    url = f"{api.rstrip('/')}/users/@me"
    return _get(url, {"Authorization": f"Bot {token}"}, env, proxy, f"GET {url}")


GITHUB_HEADERS: Final = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def github_user(api: str, token: str, env: Mapping[str, str]) -> Check:
    """``GET <api>/user`` with the token (GitHub's REST API: 200 for a working token, 401 otherwise)."""
    url = f"{api.rstrip('/')}/user"
    return _get(url, {**GITHUB_HEADERS, "Authorization": f"Bearer {token}"}, env, None, f"GET {url}")


def slack(api: str, method: str, token: str, env: Mapping[str, str]) -> Check:
    """``method`` is ``auth.test`` or ``apps.connections.open``."""
    url = f"{api.rstrip('/')}/{method}"
    status, data, reason = call(url, "POST", {"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/x-www-form-urlencoded"}, env, body=b"")
    shown = f"Slack {method} at {url}"
    if status in (401, 403):
        return Check(REFUSED, f"{shown}: {reason}", status)
    if status // 100 != 2 or not isinstance(data, dict):
        return Check(UNREACHABLE, f"{shown}: {reason}", status)
    if data.get("ok") is True:
        return Check(GOOD, f"{shown}: ok", status)
    error = str(data.get("error") or "no error given")[:80]
    verdict = REFUSED if error in SLACK_AUTH_ERRORS else UNREACHABLE
    return Check(verdict, f"{shown}: ok false, {error}", status)


def _get(url: str, headers: Mapping[str, str], env: Mapping[str, str], proxy: str | None,
         shown: str) -> Check:
    if not url.startswith(("http://", "https://")):
        return Check(UNREACHABLE, f"{shown}: not an http(s) URL")
    opener = _opener(env, proxy)
    req = urllib.request.Request(url, headers=dict(headers), method="GET")  # noqa: S310 (scheme checked above)
    try:
        with opener.open(req, timeout=TIMEOUT_S) as resp:
            body = resp.read(1 << 20)
            return Check(GOOD, f"{shown}: HTTP {resp.status}", resp.status) if _ok_body(body) else \
                Check(REFUSED, f"{shown}: HTTP {resp.status}, not ok", resp.status)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403, 404):
            return Check(REFUSED, f"{shown}: HTTP {exc.code} {exc.reason}", exc.code)
        return Check(UNREACHABLE, f"{shown}: HTTP {exc.code} {exc.reason}", exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(UNREACHABLE, f"{shown}: {type(reason).__name__}: {str(reason)[:200]}")


def _fetch_json(url: str, env: Mapping[str, str], proxy: str | None) -> Any:
    """GET ``url`` and parse the JSON body; None on any failure (a check that cannot run says nothing)."""
    if not url.startswith(("http://", "https://")):
        return None
    req = urllib.request.Request(url, method="GET")  # noqa: S310 (scheme checked above)
    try:
        with _opener(env, proxy).open(req, timeout=TIMEOUT_S) as resp:
            return json.loads(resp.read(1 << 20) or b"null")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def telegram_webhook(api_root: str, token: str, env: Mapping[str, str], proxy: str | None = None) -> str | None:
    """The webhook URL Telegram has for the bot (``getWebhookInfo``), "" for none, None when unknown.
    Anyone who held the token could have set one: the bot's updates then go there (and long polling
    stops working)."""
    data = _fetch_json(f"{api_root.rstrip('/')}/bot{token}/getWebhookInfo", env, proxy)
    result = data.get("result") if isinstance(data, dict) and data.get("ok") is True else None
    url = result.get("url") if isinstance(result, dict) else None
    return url if isinstance(url, str) else None


def _ok_body(body: bytes) -> bool:
    """A JSON body that does not say ``ok: false`` (Telegram answers errors with 200 only when broken)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return False
    return not (isinstance(data, dict) and data.get("ok") is False)


def telegram(api_root: str, token: str, env: Mapping[str, str], proxy: str | None = None) -> Check:
    base = api_root.rstrip("/")
    return _get(f"{base}/bot{token}/getMe", {}, env, proxy, f"getMe at {base}/bot<token>/getMe")


def model_key(base_url: str, key: str, provider: str, env: Mapping[str, str]) -> Check:
    url = f"{base_url.rstrip('/')}/models"
    headers = ({"x-api-key": key, "anthropic-version": "2023-06-01"} if provider == "anthropic"
               else {"Authorization": f"Bearer {key}"})
    return _get(url, headers, env, None, f"GET {url}")


def matrix_whoami(homeserver: str, token: str, env: Mapping[str, str]) -> tuple[Check, str | None]:
    """(the verdict, the token's ``device_id`` when the homeserver gives one)."""
    url = f"{homeserver.rstrip('/')}/_matrix/client/v3/account/whoami"
    status, data, reason = call(url, "GET", {"Authorization": f"Bearer {token}"}, env)
    if status in (401, 403):
        return Check(REFUSED, f"GET {url}: {reason}", status), None
    if status // 100 == 2 and isinstance(data, dict) and isinstance(data.get("user_id"), str):
        device = data.get("device_id")
        return Check(GOOD, f"GET {url}: {reason}", status), device if isinstance(device, str) and device else None
    return Check(UNREACHABLE, f"GET {url}: {reason}", status), None


def slack_signing_secret(value: str) -> Check:
    """Slack cannot be asked whether a signing secret is right (it only signs requests to the app): moltir
    checks the form Slack shows it in (32 lowercase hex characters)."""
    if re.fullmatch(r"[0-9a-f]{32}", value):
        return Check(GOOD, "the form of a Slack signing secret (Slack has no API that checks one)")
    return Check(REFUSED, "not a Slack signing secret (32 hex characters, as the app's Basic Information shows it)")
