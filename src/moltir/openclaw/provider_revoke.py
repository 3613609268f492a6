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

* Matrix access tokens: ``POST <homeserver>/_matrix/client/v3/logout`` authenticated with the OLD token:
  it ends that token's device only. Decision: never ``/logout/all``, which would also end the new token's
  session; and no logout when the homeserver says the old and the new token share a device (a refreshed
  token: logging the device out would end the new one too).
* OpenAI project keys: ``DELETE <baseUrl>/organization/projects/<project>/api_keys/<key id>`` with an
  admin key (a project key cannot manage keys). OpenAI never shows a key again, only its
  ``redacted_value`` (the API reference's example: ``sk-abc...def``, the head and the tail of the key
  around ``...``): moltir lists the projects (``GET <baseUrl>/organization/projects``) and each one's keys
  (``GET .../api_keys``; every page, ``?after=<last_id>`` while ``has_more``) and picks the keys whose
  redacted value is a head and a tail of the old key. Exactly one such key, over every project, is
  deleted; anything else is left to a person (the same decision as OpenRouter). Proof afterwards:
  ``GET <baseUrl>/models`` with the old key is refused (401).

``<baseUrl>`` is the one the config sets for the provider (:mod:`moltir.openclaw.rotation_table`).
"""

from __future__ import annotations

import json
import re
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
    by_hand: bool = True  # not done: a person is asked to revoke it (worth waiting for); False: left as it is


def github_revoke(api: str, old: str, env: Mapping[str, str]) -> Outcome:
    """GitHub's ``POST <api>/credentials/revoke`` with ``{"credentials": [old]}``: unauthenticated (GitHub
    answers any authenticated call with 403), 202 when accepted. It takes personal access tokens (classic
    and fine-grained) and OAuth/GitHub App user tokens; GitHub revokes them asynchronously, so the proof
    afterwards polls ``GET /user`` with the old token until it is refused."""
    url = f"{api.rstrip('/')}/credentials/revoke"
    body = json.dumps({"credentials": [old]}).encode()
    status, _data, reason = provider_check.call(
        url, "POST", {**provider_check.GITHUB_HEADERS, "Content-Type": "application/json"}, env, body=body)
    if status == 202 or status // 100 == 2:
        return Outcome(True, f"GitHub POST {url}: accepted ({reason})")
    return Outcome(False, f"GitHub POST {url} failed ({reason}): revoke it by hand "
                          "(github.com/settings/tokens)")


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


def matrix_logout(homeserver: str, old: str, new: str, env: Mapping[str, str]) -> Outcome:
    root = homeserver.rstrip("/")
    old_check, old_device = provider_check.matrix_whoami(root, old, env)
    if old_check.verdict == REFUSED:
        return Outcome(True, f"Matrix whoami at {root}: the old token is already refused ({old_check.detail})")
    _new_check, new_device = provider_check.matrix_whoami(root, new, env)
    if old_device is not None and old_device == new_device:
        return Outcome(False, "the old and the new Matrix token belong to the same device: logging it out would "
                              "end the new token too; the old one is left as it is", by_hand=False)
    url = f"{root}/_matrix/client/v3/logout"
    status, _data, reason = provider_check.call(url, "POST", {**_bearer(old), "Content-Type": "application/json"},
                                                env, body=b"{}")
    if status // 100 == 2:
        return Outcome(True, f"Matrix POST {url}: the old token's device is logged out ({reason})")
    return Outcome(False, f"Matrix POST {url} failed ({reason}): log the old session out by hand "
                          "(a Matrix client > Settings > Sessions)")


#: OpenAI's list endpoints give at most 100 objects a page (``limit``, its API reference); moltir reads
#: at most this many pages of each list, then stops (a key it has not seen is never deleted).
OPENAI_PAGE: Final = 100
OPENAI_BY_HAND: Final = "delete it by hand (platform.openai.com > the project > API keys)"
_MASK_RE: Final = re.compile(r"(?:\.{3}|\u2026|\*{3,})")


def openai_admin_ok(base: str, admin: str, env: Mapping[str, str]) -> Check:
    """Does the admin key list the organization's projects? (asked before anything changes)"""
    url = f"{base.rstrip('/')}/organization/projects?limit=1"
    status, data, reason = provider_check.call(url, "GET", _bearer(admin), env)
    if status in (401, 403):
        return Check(REFUSED, f"GET {url}: {reason}", status)
    if status // 100 == 2 and isinstance(data, dict) and isinstance(data.get("data"), list):
        return Check(GOOD, f"GET {url}: {reason}", status)
    return Check(UNREACHABLE, f"GET {url}: {reason}", status)


def redacted_matches(redacted: object, key: str) -> bool:
    """Is ``redacted`` (``sk-abc...def``: a head, a mask, a tail) a redaction of ``key``? Both the head and
    the tail must be non-empty and together shorter than the key."""
    if not isinstance(redacted, str):
        return False
    parts = _MASK_RE.split(redacted, maxsplit=1)
    if len(parts) != 2:
        return False
    head, tail = parts[0], parts[1].lstrip(".*\u2026")
    return (bool(head) and bool(tail) and len(head) + len(tail) < len(key)
            and key.startswith(head) and key.endswith(tail))


def _openai_list(url: str, admin: str, env: Mapping[str, str],
                 extra: str = "") -> tuple[list[dict[str, Any]], bool, str]:
    """Every object of a paginated OpenAI list (``?after=<last_id>`` while ``has_more``): (objects,
    complete, reason); not complete when a page failed or :data:`MAX_KEY_PAGES` ran out."""
    items: list[dict[str, Any]] = []
    after, reason = "", ""
    for _page in range(MAX_KEY_PAGES):
        query = f"limit={OPENAI_PAGE}{extra}" + (f"&after={urllib.parse.quote(after, safe='')}" if after else "")
        status, data, reason = provider_check.call(f"{url}?{query}", "GET", _bearer(admin), env)
        page = data.get("data") if isinstance(data, dict) else None
        if status // 100 != 2 or not isinstance(page, list):
            return items, False, reason
        items += [obj for obj in page if isinstance(obj, dict)]
        last = data.get("last_id") or (items[-1].get("id") if items else None)
        if not data.get("has_more"):
            return items, True, reason
        if not isinstance(last, str) or not last or last == after:
            return items, False, reason
        after = last
    return items, False, reason


def _openai_matches(root: str, old: str, admin: str,
                    env: Mapping[str, str]) -> tuple[list[tuple[str, str]], bool, str]:
    """(project id, key id) of every listed key whose redacted value fits ``old``; complete or not."""
    projects, complete, reason = _openai_list(f"{root}/organization/projects", admin, env)
    found: list[tuple[str, str]] = []
    for project in projects:
        pid = project.get("id")
        if not isinstance(pid, str) or not pid:
            continue
        # owner_project_access=any: every enabled key (OpenAI's reference: without it, membership-based
        # visibility rules may leave some enabled keys out of the list)
        keys, done, why = _openai_list(
            f"{root}/organization/projects/{urllib.parse.quote(pid, safe='')}/api_keys", admin, env,
            extra="&owner_project_access=any")
        complete, reason = complete and done, why if not done else reason
        found += [(pid, k["id"]) for k in keys
                  if isinstance(k.get("id"), str) and k["id"] and redacted_matches(k.get("redacted_value"), old)]
    return found, complete, reason


def openai_delete(base: str, old: str, admin: str, env: Mapping[str, str]) -> Outcome:
    """Delete the old project key with an admin key, when exactly one listed key fits it."""
    root = base.rstrip("/")
    found, complete, reason = _openai_matches(root, old, admin, env)
    if not complete:
        return Outcome(False, f"could not read every project's keys at {root}/organization/projects ({reason}): "
                              f"{OPENAI_BY_HAND}")
    if len(found) != 1:
        return Outcome(False, f"{len(found)} project key(s) whose redacted value fits the old key at "
                              f"{root}/organization/projects: {OPENAI_BY_HAND}")
    pid, kid = (urllib.parse.quote(x, safe="") for x in found[0])
    status, _data, reason = provider_check.call(f"{root}/organization/projects/{pid}/api_keys/{kid}", "DELETE",
                                                _bearer(admin), env)
    shown = f"OpenAI DELETE {root}/organization/projects/<project>/api_keys/<key>"
    if status // 100 == 2:
        return Outcome(True, f"{shown}: the old key is deleted ({reason})")
    return Outcome(False, f"{shown} failed ({reason}): {OPENAI_BY_HAND}")


__all__ = ["GOOD", "REFUSED", "UNREACHABLE", "Outcome", "matrix_logout", "openai_admin_ok", "openai_delete",
           "openrouter_delete", "openrouter_key", "openrouter_management_ok", "redacted_matches", "slack_revoke"]
