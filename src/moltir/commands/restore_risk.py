"""``moltir restore --accept-risk CHECK-ID``: a restore that would put back a setting the security audit
flags needs the flagged check accepted by name.

Decision (the team lead's): the case's own audit ran after containment disabled the DMs, so it cannot
have flagged them. The risk is computed from what restore WOULD write back, before anything changes:

* every DM policy recorded as ``open`` that restore puts back as ``open`` (``--reopen-open`` other than
  ``open`` makes it no risk). The check id is the one the installed release's ``openclaw security audit``
  reports for an open DM -- the capability table's ``audit_open_dm_check``: ``channels.<channel>.dm.open``
  (e.g. 2026.1.29), or ``security.exposure.open_groups_with_elevated`` on releases whose audit lists open
  DM policies in its exposure findings (2026.6.11 on; 2026.9.6 reports no ``dm.open`` at all);
* every ``groupPolicy`` recorded as ``open`` (a contain runbook with ``with: { groups: ... }``):
  ``security.exposure.open_groups_with_elevated`` on every release.

The id is named whatever tools are enabled (with ``tools.elevated.enabled: false`` a 2026.9.6 audit may
raise another ``security.exposure.open_*`` finding, or none): an open policy is the risk either way, and
one stable id per setting is what a script can pass. Restore never writes ``gateway.bind`` or the Control
UI auth (containment does not change them), and the paused tools, elevated and cron settings the
``pause`` section puts back are no audit finding of their own, so nothing else needs accepting.

``--hardened`` accepts nothing, but a risk on a setting the harden runbook that runs right after the
restore closes (its ``harden.config`` steps for ``dm`` and ``groups``) is moot: listed, not required. If
that harden run fails, the restored policy stays open: the harden run's failure says so.

Without every needed id, restore refuses (exit 2) before it changes anything, naming the ids, and the
case's journal records ``restore.refused``; the accepted ids go into the journal as ``risk.accepted``
(check ids only). An ``--accept-risk`` id that this restore does not need is a warning, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moltir.commands.restore_preview import _dm_entries, _is_dm
from moltir.errors import EXIT_USAGE, MoltirError

EXPOSURE_ID = "security.exposure.open_groups_with_elevated"


@dataclass(frozen=True)
class Risk:
    check_id: str
    path: str  # the config path restore writes back (dotted)
    setting: str  # "dm" | "groups": the harden setting that closes it
    moot: bool = False  # --hardened: the harden run right after the restore closes it


def check_id(path: str, setting: str, dm_check: str) -> str:
    """The audit check id that flags ``path`` (an open DM or group policy) on this release."""
    if setting == "dm" and dm_check == "channel":
        parts = path.split(".")
        return f"channels.{parts[1]}.dm.open" if len(parts) > 1 and parts[0] == "channels" else EXPOSURE_ID
    return EXPOSURE_ID


def risks(restore_data: Mapping[str, Any], *, dm_check: str, reopen_open: str, restores_dms: bool = True,
          hardened: Iterable[str] = ()) -> list[Risk]:
    """What restore would write back that the audit flags, one entry per path."""
    section = restore_data.get("dm_policy")
    if not restores_dms or section is None:
        return []
    closed = set(hardened)
    out: list[Risk] = []
    for path, old, had in _dm_entries(section):
        if not had or old != "open":
            continue
        if _is_dm(path):
            if reopen_open != "open":
                continue
            setting = "dm"
        elif path.endswith(".groupPolicy"):
            setting = "groups"
        else:
            continue
        out.append(Risk(check_id(path, setting, dm_check), path, setting, moot=setting in closed))
    return out


def needed(found: Sequence[Risk]) -> list[str]:
    """The check ids that must be accepted (sorted, each once)."""
    return sorted({r.check_id for r in found if not r.moot})


def unaccepted(found: Sequence[Risk], accepted: Iterable[str]) -> list[str]:
    ok = set(accepted)
    return [c for c in needed(found) if c not in ok]


def refusal(found: Sequence[Risk], missing: Sequence[str], case_id: str) -> MoltirError:
    """The one-line refusal: the ids, the paths they flag, and the flags that get past it."""
    paths = ", ".join(sorted({r.path for r in found if r.check_id in missing})[:4])
    flags = " ".join(f"--accept-risk {c}" for c in missing)
    return MoltirError(f"restore of case {case_id} would put back what the security audit flags: "
                       f"{', '.join(missing)} ({paths} back to 'open'); nothing was changed",
                       hint=f"pass {flags} to restore it anyway, or --reopen-open=pairing (or --hardened) "
                            "to restore without reopening", exit_code=EXIT_USAGE)


def preview_lines(found: Sequence[Risk], accepted: Iterable[str]) -> list[str]:
    """For the preview / dry run: each risk, and whether it is accepted, moot or still needed."""
    ok = set(accepted)
    lines: list[str] = []
    for r in found:
        state = ("moot: the harden run after the restore closes it" if r.moot else
                 "accepted (--accept-risk)" if r.check_id in ok else f"needs --accept-risk {r.check_id}")
        lines.append(f"risk {r.check_id}: {r.path} back to 'open': {state}")
    return lines


def unused(found: Sequence[Risk], accepted: Iterable[str]) -> list[str]:
    """``--accept-risk`` ids this restore does not need (a warning each)."""
    need = set(needed(found))
    return [c for c in dict.fromkeys(accepted) if c not in need]
