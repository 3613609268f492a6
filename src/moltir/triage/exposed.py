"""A credential's value in a tool result: which of the case's credentials a tool returned.

The values are the ones ``moltir credentials --case`` reads from the case's copies (the config with its
``$include`` files, its backups and preimage, the SQLite stores; :mod:`moltir.commands.credentials_case`),
held in memory only. A tool result's text (as the transcript recorded it, up to
:data:`moltir.triage.events.MAX_TEXT` characters) is searched for each value and its JSON-escaped form
(:meth:`moltir.evidence.exposure.Needle.forms`); values shorter than
:data:`moltir.evidence.exposure.MIN_LEN` are not searched. A hit sets the event's ``credential`` field to
the credential ids with their keyed fingerprints (HMAC-SHA-256 under the case's key,
``evidence/credentials/hmac.key``, or a per-run key): never the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from moltir.evidence.exposure import MIN_LEN, Needle
from moltir.redaction import keyed_fingerprint
from moltir.triage.events import Event


class CredentialMatcher:
    def __init__(self, needles: Iterable[Needle], key: bytes) -> None:
        usable = [n for n in needles if len(n.value) >= MIN_LEN]
        self._forms = [(f"{n.id} ({keyed_fingerprint(key, n.value)})",
                        tuple(f.decode("utf-8") for f in n.forms())) for n in usable]

    def __len__(self) -> int:
        return len(self._forms)

    def annotate(self, event: Event) -> Event:
        if event.kind != "tool_result" or not self._forms or not event.text:
            return event
        hits = [label for label, forms in self._forms if any(f in event.text for f in forms)]
        return dataclasses.replace(event, credential=", ".join(sorted(set(hits)))) if hits else event
