"""What ``moltir rotate`` did, per install and credential, for ``moltir status`` and ``contain``'s summary.

``<moltir home>/installs/rotations.json``: ``{state dir: {credential id: {state, new_fingerprint, at, case,
revoke}}}`` (0600; fingerprints only). ``state`` is what status prints for the credential:

* ``rotated and proved``: the new value was validated at the issuer, stored, and re-read by the gateway
  (which still answers on its own token); ``revoke_old`` says how the old one is revoked where that is an
  API call (``--revoke-old`` makes it for Slack tokens and OpenRouter keys) -- decision: the rotation is
  done, the revocation is a hint;
* ``pending a person``: as above, but only a person can revoke the old one (Telegram BotFather
  ``/revoke``, Discord's Developer Portal, Slack's app settings for the app-level token and the signing
  secret, WhatsApp relink): until then the old value still works at the
  issuer, so the credential stays on the list of next steps;
* ``not rotated``: everything else the case's inventory lists (the default).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from moltir import paths
from moltir.fsutil import ensure_private_dir, write_json
from moltir.openclaw import credential_table

ROTATED, PENDING, NOT_ROTATED = "rotated and proved", "pending a person", "not rotated"


def _ledger(env: Any = None) -> Path:
    return paths.installs_dir(env) / "rotations.json"


def load(state_dir: str, env: Any = None) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(_ledger(env).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entry = data.get(state_dir) if isinstance(data, dict) else None
    return {k: v for k, v in entry.items() if isinstance(v, dict)} if isinstance(entry, dict) else {}


def record(state_dir: str, cred_id: str, provider: str, new_fingerprint: str, case_dir: str,
           env: Any = None, revoke: dict[str, object] | None = None) -> None:
    """``revoke``: who revokes the old value (:func:`moltir.openclaw.rotation_table.revocation`), else the
    provider's answer."""
    revoke = revoke or credential_table.revocation(provider)
    state = PENDING if revoke["by"] == "person" else ROTATED
    path = _ledger(env)
    ensure_private_dir(path.parent)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    entry = data.setdefault(state_dir, {})
    entry[cred_id] = {"state": state, "new_fingerprint": new_fingerprint, "case": case_dir,
                      "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "revoke_old": revoke["how"]}
    write_json(path, data)


def mark(state_dir: str, cred_id: str, state: str, env: Any = None) -> None:
    """Set the state of a recorded rotation (the old value was proved refused: rotated and proved)."""
    path = _ledger(env)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    entry = data.get(state_dir, {}).get(cred_id) if isinstance(data, dict) else None
    if isinstance(entry, dict):
        entry["state"] = state
        entry["old_refused_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_json(path, data)


def state_of(rotations: dict[str, dict[str, Any]], cred_id: str) -> str:
    return str((rotations.get(cred_id) or {}).get("state") or NOT_ROTATED)
