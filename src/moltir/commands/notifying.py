"""``--notify``: one message per state change of a contain, restore or drill run.

Messages (``event``): ``started`` (the run's first step is about to run), ``step-failed`` (one per
failed step), then the outcome: ``contained`` (with the journal head hash after the run's last
record), ``restored``, ``drill-passed``, ``drill-failed`` (a drill refused before it started too),
``interrupted``. A contain or restore that ends failed sends no extra outcome: its ``step-failed``
message is that state change. A run with nothing to do (every step already done) sends nothing.

A message carries the command, the case id, the host name, the install key (a hash of the state
dir), the step id, the journal head and token fingerprints (first 8 hex of SHA-256) -- never a
token, a credential, a path, an error text or any message text from the chats.

Refused before anything runs (exit 2): a URL that carries a credential of this install -- e.g. a
Telegram bot API URL (or Apprise ``tgram://``) with the bot token of a configured channel, the very
channel contain disables and the credential a rotation replaces. When the install's credentials
cannot be read, every ``api.telegram.org/bot...`` URL is refused, since it cannot be told apart.

A failed notification (receiver down, HTTP error, timeout after 5 s) never fails the run: each one is
a console warning at once and a ``notify.failed`` journal record after the run (with the target's
scheme, host and fingerprint); a delivered one is a ``notify.sent`` record.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moltir import notify
from moltir.errors import MoltirError, usage_error

Note = Callable[[str], None]
Emit = Callable[[str, Mapping[str, Any]], None]

_OUTCOMES = {("contain", "ok"): ("contained", "contained"), ("restore", "ok"): ("restored", "restored"),
             ("drill", "ok"): ("drill-passed", "drill passed"), ("drill", "failed"): ("drill-failed", "drill failed")}


def _install_secrets(install: Any) -> tuple[dict[str, str], bool]:
    """(credential id -> value, whether the inventory could be read)."""
    from moltir.openclaw.credentials import inventory

    try:
        return {c.id: c.value for c in inventory(install) if c.value}, True
    except MoltirError:
        return {}, False
    except Exception:  # a bug in one reader must not block containment; refuse conservatively
        return {}, False


def check_targets(install: Any, given: Sequence[str]) -> list[notify.Target]:
    """Parse every ``--notify`` value and refuse one through a channel contain disables or rotates.
    The credential check comes first: such a URL is refused (exit 2) even where it could not be parsed
    or needs Apprise, and nothing of it is shown but its scheme and host."""
    urls = notify.expand(list(given))
    if not urls:
        return []
    secrets, readable = _install_secrets(install)
    for url in urls:
        which = notify.credential_in_url(url, secrets)
        if which:
            raise usage_error(f"--notify {notify.safe_form(url)}: the URL carries this install's credential "
                              f"'{which}' (a channel contain disables or a secret it rotates), so the "
                              "notification would go through what is being shut",
                              "notify through a channel outside the gateway: an ntfy topic, a webhook, e-mail")
        if not readable and re.match(r"(?i)^https?://api\.telegram\.org(:\d+)?/bot", url.strip()):
            raise usage_error(f"--notify {notify.safe_form(url)}: a Telegram bot API URL, and this install's "
                              "credentials could not be read to tell it from the configured channel's bot",
                              "notify through a channel outside the gateway: an ntfy topic, a webhook, e-mail")
    return notify.targets(urls)


@dataclass
class Notifier:
    """Sends the run's messages to ``targets``; remembers what went out for the journal."""

    targets: list[notify.Target]
    kind: str  # contain | restore | drill
    install_key: str
    note: Note
    send: Callable[[notify.Target, notify.Message], str] = notify.send
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    case_id: str = ""
    profile: str = ""  # --all-profiles: the install's profile name ("default": the unnamed one)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def message(self, event: str, title: str, **fields: Any) -> notify.Message:
        base = {"command": self.kind, "case_id": self.case_id or None, "host": socket.gethostname()[:64],
                "install": self.install_key, **({"profile": self.profile} if self.profile else {})}
        where = f" [{self.profile}]" if self.profile else ""
        return notify.Message(event, f"moltir {self.kind}{where}: {title}", {**base, **fields})

    def deliver(self, msg: notify.Message) -> None:
        for target in self.targets:
            error = self.send(target, msg)
            fields = {"notify_event": msg.event, **target.describe()}
            with self._lock:
                if error:
                    self.records.append(("notify.failed", {**fields, "error": error}))
                else:
                    self.records.append(("notify.sent", fields))
            if error:
                self.note(f"notification '{msg.event}' to {target.shown} failed: {error}; the run goes on")

    def wrap(self, emit: Emit) -> Emit:
        """``emit`` that also notifies the start and every failed step."""
        def wrapped(event: str, fields: Mapping[str, Any]) -> None:
            emit(event, fields)
            if not self.targets:
                return
            if event == "run.start":
                self.case_id = str(fields.get("case_id") or self.case_id)
                self.deliver(self.message("started", f"started (case {self.case_id})"))
            elif event == "step.failed":
                step = str(fields.get("step", ""))
                self.deliver(self.message("step-failed", f"step '{step}' failed (case {self.case_id})", step=step))
        return wrapped

    def finish(self, result: Any, case: Any) -> None:
        """The outcome's message, then every notification's record in the case journal."""
        if not self.targets:
            return
        self.case_id = result.case_id or self.case_id
        outcome = _OUTCOMES.get((self.kind, result.status))
        if result.status == "interrupted":
            outcome = ("interrupted", "interrupted")
        if outcome is not None and result.status != "noop":
            fields = _fingerprints(case)
            if self.kind == "contain" and case is not None:
                fields["journal_head"] = case.journal().head
            self.deliver(self.message(outcome[0], f"{outcome[1]} (case {self.case_id})", **fields))
        self.journal(case)

    def refused(self, exc: MoltirError) -> None:
        """A drill refused before it started: that is a failed drill too."""
        if self.targets and self.kind == "drill":
            self.deliver(self.message("drill-failed", "drill failed before it started", exit_code=exc.exit_code))

    def journal(self, case: Any) -> None:
        if case is None or not self.records:
            return
        try:
            journal = case.journal()
            for event, fields in self.records:
                journal.append(event, **fields)
        except MoltirError as exc:  # the notifications must not fail the run either
            self.note(f"the notification records could not be journalled: {exc.one_line()}")
        self.records.clear()


def _fingerprints(case: Any) -> dict[str, Any]:
    """The token fingerprints the case recorded (``restore.json``: new and old)."""
    if case is None:
        return {}
    try:
        token = json.loads((case.dir / "restore.json").read_text(encoding="utf-8")).get("token") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k in ("new_fingerprint", "old_fingerprint")
            if isinstance(v := token.get(k), str) and len(v) <= 16}

