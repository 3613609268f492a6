"""Ask the installed release whether a config it would read is valid, before moltir writes it.

The candidate (the whole config as it will be once moltir's edits are written, ``$include`` files
merged in) goes to a 0600 temp file next to the config (so relative paths resolve the same), and
the release's own validator reads it through ``OPENCLAW_CONFIG_PATH``: ``openclaw config
validate --json`` where the release has it, else ``openclaw config get gateway.mode``, which
exits non-zero and lists the problems on an invalid file (capability ``config_validate``). The
child never gets a credential on its argv or in inherited variables; it runs bounded
(``MOLTIR_VALIDATE_TIMEOUT_S``, default 60 s) in its own session.

A verdict is ``ok`` True (valid), False (invalid, with the problems) or None (could not tell: no
binary, no answer in time). Valid verdicts are cached per candidate, with the gateway token's
value masked in the key (its value never changes validity), so a validation started while the
gateway drains (``warm``) serves the write that follows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from moltir.openclaw.install import Install

DEFAULT_TIMEOUT_S: Final = 60.0
MASK: Final = "<gateway token>"  # stands for the token's value in cache keys
_PROBLEM: Final = re.compile(r"^\s*-\s+([A-Za-z0-9_.\-\[\]<>*]+):\s+(.+?)\s*$")
_INVALID_WORDS: Final = ("Invalid config", "Config invalid", "config is invalid")


@dataclass(frozen=True)
class Verdict:
    ok: bool | None
    problems: tuple[str, ...] = ()
    how: str = ""
    ms: int = 0

    def describe(self) -> str:
        if self.ok:
            return f"valid ({self.how}, {self.ms} ms)"
        if self.ok is None:
            return f"not validated: {self.how}"
        return f"invalid ({self.how}): {'; '.join(self.problems) or 'no detail'}"


def _timeout(env: Mapping[str, str]) -> float:
    try:
        return max(1.0, float(env.get("MOLTIR_VALIDATE_TIMEOUT_S", "") or DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def cache_key(install: Install, data: Mapping[str, Any]) -> str:
    masked = json.loads(json.dumps(data))
    auth = masked.get("gateway", {}).get("auth") if isinstance(masked.get("gateway"), dict) else None
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        auth["token"] = MASK
    text = json.dumps(masked, sort_keys=True)
    return hashlib.sha256(f"{install.config_path}\0{install.binary}\0{text}".encode()).hexdigest()


_CACHE: dict[str, Future[Verdict]] = {}
_LOCK = threading.Lock()


def _in_background(install: Install, data: Mapping[str, Any]) -> Future[Verdict]:
    """Run :func:`run` in a daemon thread (an exit or Ctrl-C never waits for a background check;
    its child runs in its own session and is ended by its own bound)."""
    fut: Future[Verdict] = Future()

    def work() -> None:
        try:
            fut.set_result(run(install, data))
        except BaseException as exc:  # reported to whoever waits on it
            fut.set_exception(exc)

    threading.Thread(target=work, name="validate", daemon=True).start()
    return fut


def start(install: Install, data: Mapping[str, Any]) -> None:
    """Begin validating ``data`` in the background (a later :func:`validate` of it waits for that)."""
    if install.binary is None:
        return
    key = cache_key(install, data)
    snapshot = json.loads(json.dumps(data))
    with _LOCK:
        if key in _CACHE:
            return
        _CACHE[key] = _in_background(install, snapshot)


def validate(install: Install, data: Mapping[str, Any]) -> Verdict:
    """The release's verdict on ``data`` (a cached valid verdict for the same candidate is reused)."""
    if install.binary is None:
        return Verdict(None, how="the openclaw binary was not found")
    key = cache_key(install, data)
    with _LOCK:
        pending = _CACHE.get(key)
    if pending is not None:
        with contextlib.suppress(Exception):
            got = pending.result()
            if got.ok:
                return got
    got = run(install, data)
    if got.ok:
        done: Future[Verdict] = Future()
        done.set_result(got)
        with _LOCK:
            _CACHE[key] = done
    return got


def run(install: Install, data: Mapping[str, Any]) -> Verdict:
    """Validate ``data`` now with the install's binary (see the module doc)."""
    how = install.caps.config_validate
    started = time.monotonic()
    folder = install.config_path.parent
    tmp = folder / f".{install.config_path.name}.moltir-validate-{secrets.token_hex(4)}.json"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return Verdict(None, how=f"cannot write a temp file in {folder} ({exc.strerror})")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        if install.run_as is not None:  # the validator runs as the install's user: it must read the file
            os.chown(tmp, *install.run_as)
        args = ("config", "validate", "--json") if how == "config validate" else ("config", "get", "gateway.mode")
        env = install.child_env({"OPENCLAW_CONFIG_PATH": str(tmp)})
        timeout = _timeout(install.env)
        try:
            proc = install.run_cli(*args, timeout_s=timeout, env=env)
        except subprocess.TimeoutExpired:
            return Verdict(None, how=f"openclaw {' '.join(args)} gave no answer within {timeout:g} s")
        except OSError as exc:
            return Verdict(None, how=f"openclaw {' '.join(args)} could not run ({exc.strerror})")
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        ms = int((time.monotonic() - started) * 1000)
        label = f"openclaw {' '.join(args)}"
        if how == "config validate":
            return _from_json(out, err, proc.returncode, label, ms, str(tmp))
        return _from_text(out + "\n" + err, proc.returncode, label, ms, str(tmp))
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _scrub(text: str, tmp: str) -> str:
    return text.replace(tmp, "<candidate config>")


def _from_json(out: str, err: str, rc: int, label: str, ms: int, tmp: str) -> Verdict:
    start = out.find("{")
    try:
        doc = json.loads(out[start:]) if start >= 0 else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "valid" not in doc:
        lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
        return Verdict(None, how=f"{label} (rc {rc}) said no verdict: {_scrub(lines[-1] if lines else '', tmp)[:200]}",
                       ms=ms)
    if doc.get("valid") is True:
        return Verdict(True, how=label, ms=ms)
    raw = doc.get("issues")
    issues: list[Any] = raw if isinstance(raw, list) else []
    problems = tuple(_scrub(f"{i.get('path') or '<root>'}: {i.get('message')}", tmp)
                     for i in issues if isinstance(i, dict))
    return Verdict(False, problems, label, ms)


def _from_text(text: str, rc: int, label: str, ms: int, tmp: str) -> Verdict:
    invalid = any(w in text for w in _INVALID_WORDS)
    if rc == 0 and not invalid:
        return Verdict(True, how=label, ms=ms)
    problems = []
    for line in text.splitlines():
        m = _PROBLEM.match(line.replace("\\n", "\n").split("\n")[-1])
        if m is not None and ("." in m[1] or m[1] in ("gateway", "channels", "<root>")):
            problems.append(_scrub(f"{m[1]}: {m[2]}", tmp))
    if invalid or problems:
        return Verdict(False, tuple(dict.fromkeys(problems)), label, ms)
    last = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return Verdict(None, how=f"{label} exited {rc}: {_scrub(last[-1] if last else '', tmp)[:200]}", ms=ms)


def new_problems(candidate: Verdict, current: Verdict) -> tuple[str, ...]:
    """Problems of the candidate the current config does not already have (the edit's own doing)."""
    if candidate.ok is not False:
        return ()
    if current.ok is not False:
        return candidate.problems or ("the release rejects the edited config",)
    return tuple(p for p in candidate.problems if p not in set(current.problems))
