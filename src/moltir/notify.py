"""Notification targets (``--notify URL``): parsing a URL into a target and sending one message to it.

Built in, with the standard library only:

* **ntfy** -- ``ntfy://HOST/TOPIC`` (HTTPS), ``ntfy+http://HOST:PORT/TOPIC`` (a server on plain HTTP,
  e.g. on the LAN), or an ``https://`` URL whose host is ``ntfy.sh`` or starts with ``ntfy.``: the
  message is POSTed as text with a ``Title`` and ``Tags`` header;
* **webhook** -- any other ``http(s)://`` URL: the message is POSTed as one JSON object
  (``schema: moltir.notify/1``).

Any other scheme is an Apprise URL (``tgram://``, ``slack://``, ``mailto://`` ...), sent through the
``apprise`` module when it is importable; without it the URL is refused (exit 3, "install apprise").

A URL may itself hold a secret (a webhook key, ntfy credentials): it is kept in memory only, and
what is shown, journalled or returned is :attr:`Target.shown` (scheme, host and port) and
:attr:`Target.fingerprint`. Redirects are not followed (a redirect could carry the message elsewhere);
a send has a short time bound and reports failure as a string instead of raising, so a receiver that
is down can never fail the run that notifies it.
"""

from __future__ import annotations

import importlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moltir.errors import env_error, usage_error
from moltir.redaction import fingerprint, redact
from moltir.text import shown

MAX_URL = 2048
MAX_TARGETS = 8
SEND_TIMEOUT_S = 5.0
SCHEMA = "moltir.notify/1"


@dataclass(frozen=True)
class Target:
    kind: str  # ntfy | webhook | apprise
    url: str = field(repr=False)  # where to send: may hold a secret, never shown
    shown: str = ""  # scheme://host[:port] -- safe to show and record
    fingerprint: str = ""  # of the whole URL: tells two targets on one host apart

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.shown, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Message:
    event: str  # started | step-failed | contained | restored | drill-passed | drill-failed | interrupted
    title: str  # one line, built by moltir (names, ids, fingerprints: never a secret or message text)
    fields: Mapping[str, Any]  # case_id, host, step, journal_head, fingerprints ...

    def text(self) -> str:
        return "\n".join([self.title, *(f"{k}: {v}" for k, v in self.fields.items() if v not in (None, ""))])

    def payload(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "event": self.event, "title": self.title, **self.fields}


def _bad(url: str, why: str, hint: str = "") -> Exception:
    return usage_error(f"--notify {shown(safe_form(url), 120)}: {why}",
                       hint or "use ntfy://HOST/TOPIC, an https:// webhook URL or an Apprise URL")


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")
BUILT_IN = ("http", "https", "ntfy", "ntfy+http", "ntfy+https")


def safe_form(url: str) -> str:
    """What may be shown of a URL the user gave: scheme and host (built-in schemes only: an Apprise URL's
    host part is often a token), never credentials, path or query."""
    m = _SCHEME.match(url)
    if not m:
        return "(no scheme)"
    scheme = m.group(1).lower()
    if scheme not in BUILT_IN:
        return f"{scheme}://…"
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return f"{scheme}://…"
    return f"{scheme}://{host}{port}"


def parse(url: str) -> Target:
    """``url`` as a target; a URL that cannot be used is refused (exit 2) with the reason."""
    text = url.strip()
    if not text:
        raise _bad(url, "empty URL")
    if len(text) > MAX_URL:
        raise _bad(url, f"{len(text)} characters, at most {MAX_URL}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in text):
        raise _bad(url, "the URL holds spaces or control characters")
    m = _SCHEME.match(text)
    if not m:
        raise _bad(url, "not a URL (no scheme://)")
    scheme = m.group(1).lower()
    if scheme not in BUILT_IN:
        return _apprise_target(text, scheme, fingerprint(text))
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError:  # the exception's text may quote a part of the URL: not shown
        raise _bad(url, "not a URL (the host or port cannot be read)") from None
    fp = fingerprint(text)
    if scheme in ("ntfy", "ntfy+http", "ntfy+https"):
        if not parts.hostname or not parts.path.strip("/"):
            raise _bad(url, "an ntfy URL needs a host and a topic", "for example ntfy://ntfy.sh/my-topic")
        real = ("http" if scheme == "ntfy+http" else "https") + text[len(scheme):]
        return Target("ntfy", real, safe_form(text), fp)
    if scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        if not host:
            raise _bad(url, "no host")
        is_ntfy = host == "ntfy.sh" or host.startswith("ntfy.")
        if is_ntfy and not parts.path.strip("/"):
            raise _bad(url, "an ntfy URL needs a topic", "for example https://ntfy.sh/my-topic")
        return Target("ntfy" if is_ntfy else "webhook", text, safe_form(text), fp)
    raise _bad(url, f"unsupported scheme {scheme}")


def _apprise_target(url: str, scheme: str, fp: str) -> Target:
    try:
        apprise = importlib.import_module("apprise")
    except ImportError:
        raise env_error(f"--notify {shown(scheme, 20)}://…: '{shown(scheme, 20)}://' is not built in and "
                        "needs Apprise, which is not installed",
                        "install it next to moltir ('pipx inject moltir apprise' or 'pip install apprise'), or "
                        "use an ntfy:// or https:// webhook URL") from None
    probe = apprise.Apprise()
    if not probe.add(url):
        raise usage_error(f"--notify {shown(scheme, 20)}://…: Apprise does not accept this URL",
                          "check it with 'apprise -vv -b test URL'")
    # an Apprise URL's "host" is often a credential itself (tgram://BOTTOKEN/CHAT, slack://TOKEN/...)
    return Target("apprise", url, f"{scheme}://…", fp)


def read_list(path: Path) -> list[str]:
    """``--notify @FILE``: one URL a line (blank lines and ``#`` comments skipped)."""
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise usage_error(f"--notify @{shown(path, 200)}: cannot read it ({reason})",
                          "name a file with one notification URL a line") from None
    urls = [line.strip() for line in data.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise usage_error(f"--notify @{shown(path, 200)}: the file names no URL",
                          "put one notification URL a line in it")
    return urls


def expand(given: Sequence[str]) -> list[str]:
    """Every ``--notify`` value (a URL, or ``@FILE`` of URLs) as the list of URLs it names."""
    urls: list[str] = []
    for value in given:
        urls.extend(read_list(Path(value[1:]).expanduser()) if value.startswith("@") else [value])
    return urls


def targets(given: Sequence[str]) -> list[Target]:
    """Every ``--notify`` value (a URL, or ``@FILE`` of URLs) parsed; duplicates dropped."""
    out: dict[str, Target] = {}
    for url in expand(given):
        target = parse(url)
        out.setdefault(target.url, target)
    if len(out) > MAX_TARGETS:
        raise usage_error(f"--notify: {len(out)} targets, at most {MAX_TARGETS}",
                          "notify fewer places (one ntfy topic can reach many phones)")
    return list(out.values())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None  # a 3xx is reported as a failure, the message is not re-sent elsewhere


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    if not url.lower().startswith(("http://", "https://")):  # parse() gives only these
        raise ValueError("not an http(s) URL")
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 -- http(s) only, checked above
                                     headers={"User-Agent": "moltir-notify", **headers})
    with opener.open(request, timeout=timeout) as response:
        response.read(4096)


def _header(text: str) -> str:
    """A header value: ASCII, one line (ntfy reads UTF-8 titles only RFC 2047-encoded)."""
    return "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)[:200]


def send(target: Target, message: Message, timeout: float = SEND_TIMEOUT_S) -> str:
    """Send ``message``; ``""`` when it was accepted, else why not (one line, no secret)."""
    text = redact(message.text())
    try:
        if target.kind == "ntfy":
            _post(target.url, text.encode("utf-8"),
                  {"Title": _header(redact(message.title)), "Tags": f"moltir,{message.event}",
                   "Content-Type": "text/plain; charset=utf-8"}, timeout)
        elif target.kind == "webhook":
            body = redact(json.dumps(message.payload(), sort_keys=True, default=str))
            _post(target.url, body.encode("utf-8"), {"Content-Type": "application/json"}, timeout)
        else:
            apprise = importlib.import_module("apprise")
            sender = apprise.Apprise()
            sender.add(target.url)
            if not sender.notify(body=text, title=redact(message.title)):
                return "Apprise could not deliver it"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {target.shown}"
    except urllib.error.URLError as exc:
        return f"{target.shown} not reachable ({shown(redact(str(exc.reason)), 120)})"
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed response
        return f"{target.shown}: {shown(redact(type(exc).__name__ + ': ' + str(exc)), 160)}"
    except Exception as exc:  # an Apprise plugin's own failure never fails the run
        return f"{target.shown}: {shown(redact(type(exc).__name__), 80)}"
    return ""


def credential_in_url(url: str, secrets: Mapping[str, str]) -> str:
    """The id of the first secret (id -> value) that ``url`` carries, raw or percent-encoded; ``""``."""
    candidates = {url, urllib.parse.unquote(url), urllib.parse.unquote_plus(url)}
    for cid, value in secrets.items():
        if value and len(value) >= 8 and any(value in c for c in candidates):
            return cid
    return ""
