"""Revoke an old credential through its issuer's API (``moltir rotate --revoke-old``), once the new one is
in use. The old value and the management key stay in memory and go only into the request to the issuer.

* Slack bot and user tokens: ``POST <api>/auth.revoke`` authenticated with the OLD token (it revokes the
  token it is called with): ``ok: true`` (``revoked: true``) -> done.
* OpenRouter keys: ``DELETE <baseUrl>/keys/<hash>`` with a management key (a plain key cannot delete
  keys). The key's hash is found by its label (the masked form OpenRouter shows, e.g.
  ``sk-or-v1-abc...xyz``): ``GET <baseUrl>/key`` with the old key gives its label, ``GET <baseUrl>/keys``
  with the management key lists the keys (hash and label; every page, ``?offset=N``); exactly one key
  with that label is deleted,
  anything else is left to a person (decision: never delete a key moltir cannot single out). Proof
  afterwards: ``GET <baseUrl>/key`` with the old key is refused.

``<baseUrl>`` is the one the config sets for the provider (:mod:`moltir.openclaw.rotation_table`).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from moltir.openclaw import provider_check
from moltir.openclaw.provider_check import GOOD, REFUSED, UNREACHABLE, Check


@dataclass(frozen=True)
class Outcome:
    done: bool  # the issuer says the old value is revoked
    detail: str  # for people; never a credential


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def slack_revoke(api: str, old: str, env: Mapping[str, str]) -> Outcome:
    url = f"{api.rstrip('/')}/auth.revoke"
    _status, data, reason = provider_check.call(
        url, "POST", {**_bearer(old), "Content-Type": "application/x-www-form-urlencoded"}, env, body=b"")
    if isinstance(data, dict) and data.get("ok") is True:
        return Outcome(True, f"Slack auth.revoke at {url}: the old token is revoked")
    error = str(data.get("error"))[:80] if isinstance(data, dict) and data.get("error") else reason
    if error in provider_check.SLACK_AUTH_ERRORS:  # refused already: nothing left to revoke
        return Outcome(True, f"Slack auth.revoke at {url}: the old token is already refused ({error})")
    return Outcome(False, f"Slack auth.revoke at {url} failed ({error}): revoke the old token by hand")


def openrouter_key(base: str, key: str, env: Mapping[str, str]) -> Check:
    """``GET <base>/key``: good while the key works, refused once it is deleted or disabled."""
    url = f"{base.rstrip('/')}/key"
    status, data, reason = provider_check.call(url, "GET", _bearer(key), env)
    if status in (401, 403):
        return Check(REFUSED, f"GET {url}: {reason}", status)
    if status // 100 == 2 and isinstance(data, dict):
        return Check(GOOD, f"GET {url}: {reason}", status)
    return Check(UNREACHABLE, f"GET {url}: {reason}", status)


def openrouter_management_ok(base: str, management: str, env: Mapping[str, str]) -> Check:
    """Does the management key list keys? (asked before anything changes)"""
    url = f"{base.rstrip('/')}/keys"
    status, data, reason = provider_check.call(url, "GET", _bearer(management), env)
    if status in (401, 403):
        return Check(REFUSED, f"GET {url}: {reason}", status)
    if status // 100 == 2 and isinstance(data, dict) and isinstance(data.get("data"), list):
        return Check(GOOD, f"GET {url}: {reason}", status)
    return Check(UNREACHABLE, f"GET {url}: {reason}", status)


def _label(base: str, key: str, env: Mapping[str, str]) -> str | None:
    _status, data, _reason = provider_check.call(f"{base.rstrip('/')}/key", "GET", _bearer(key), env)
    inner = data.get("data") if isinstance(data, dict) else None
    label = inner.get("label") if isinstance(inner, dict) else None
    return label if isinstance(label, str) and label else None


#: OpenRouter lists keys 100 per page (``GET /keys?offset=N``, its API reference); moltir reads at most
#: this many pages, then stops (a key it has not seen is never deleted).
MAX_KEY_PAGES: Final = 50


def _hashes_with_label(root: str, label: str, management: str, env: Mapping[str, str]) -> tuple[list[Any], str]:
    """The hashes of the keys listed with ``label``, over every page of ``GET /keys``."""
    hashes: list[Any] = []
    offset, reason = 0, ""
    for _page in range(MAX_KEY_PAGES):
        _status, data, reason = provider_check.call(f"{root}/keys?offset={offset}", "GET", _bearer(management), env)
        keys = data.get("data") if isinstance(data, dict) else None
        if not isinstance(keys, list) or not keys:
            break
        hashes += [k.get("hash") for k in keys if isinstance(k, dict) and k.get("label") == label]
        offset += len(keys)
    return hashes, reason


def openrouter_delete(base: str, old: str, management: str, env: Mapping[str, str]) -> Outcome:
    root = base.rstrip("/")
    label = _label(root, old, env)
    if label is None:
        return Outcome(False, f"GET {root}/key did not give the old key's label: delete it by hand "
                              "(openrouter.ai/settings/keys)")
    hashes, reason = _hashes_with_label(root, label, management, env)
    if len(hashes) != 1 or not isinstance(hashes[0], str) or not hashes[0]:
        return Outcome(False, f"{len(hashes)} key(s) with the old key's label among GET {root}/keys ({reason}): "
                              "delete it by hand (openrouter.ai/settings/keys)")
    url = f"{root}/keys/{urllib.parse.quote(hashes[0], safe='')}"
    status, _data, reason = provider_check.call(url, "DELETE", _bearer(management), env)
    if status // 100 == 2:
        return Outcome(True, f"OpenRouter DELETE {root}/keys/<hash>: the old key is deleted ({reason})")
    return Outcome(False, f"OpenRouter DELETE {root}/keys/<hash> failed ({reason}): delete it by hand")


__all__ = ["GOOD", "REFUSED", "UNREACHABLE", "Outcome", "openrouter_delete", "openrouter_key",
           "openrouter_management_ok", "slack_revoke"]
