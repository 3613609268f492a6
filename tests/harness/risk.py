"""``moltir restore --accept-risk`` for the harness config: it has open DMs (Telegram account ``alerts``,
Discord), so every real restore that puts them back must accept the audit check that flags them.

The ids per release (``moltir.commands.restore_risk``; the capability table's ``audit_open_dm_check``):
releases up to 2026.5.28 name an open DM ``channels.<channel>.dm.open`` (the real 2026.1.29 audit reports
``channels.telegram.dm.open``; Discord's plugin is off in the harness, so its id is not in that audit's
output, but restore names it all the same); 2026.6.11 on list open DMs in
``security.exposure.open_groups_with_elevated`` (seen in the real 2026.9.6 audit). Written out here, not
asked of moltir's table, so a wrong table row fails the tests that restore.
"""

from __future__ import annotations

EXPOSURE = "security.exposure.open_groups_with_elevated"
CHANNEL_IDS = ("channels.discord.dm.open", "channels.telegram.dm.open")
_CHANNEL_RELEASES = ("2026.1.29", "2026.2.25", "2026.5.28")


def open_dm_risks(release_id: str) -> tuple[str, ...]:
    """The check ids ``moltir restore`` needs accepted to put the harness config's open DMs back."""
    return CHANNEL_IDS if release_id in _CHANNEL_RELEASES else (EXPOSURE,)


def accept_open_dms(release_id: str) -> list[str]:
    """``--accept-risk ID`` for each of :func:`open_dm_risks`."""
    return [arg for check in open_dm_risks(release_id) for arg in ("--accept-risk", check)]


def accept_any_open_dm() -> list[str]:
    """Every id an open Telegram or Discord DM is flagged with on any release (a layout such as clawdbot's,
    whose release moltir may not tell): the ids a restore does not need are only warned about."""
    return [arg for check in (*CHANNEL_IDS, EXPOSURE) for arg in ("--accept-risk", check)]
