"""``dm_policy.set`` and ``dm_policy.restore``: every DM path off, comments kept, exactly reversible.

Which keys (shared/research/openclaw-facts.md §2, openclaw-old-run.md §6, the bundled channel
schemas of 2026.9.6, the zod schemas of 2026.1.29): see :data:`CURRENT` and :data:`LEGACY`, one
row per channel. OpenClaw resolves a DM policy as account > channel > default (``pairing``,
which is not off), and on Telegram 2026.9.x a per-chat ``direct.<chatId>.dmPolicy`` beats both.
So ``set`` writes the policy on the channel root AND on every ``accounts.<id>``, rewrites every
existing per-chat override, and inserts the key where an enabled channel or account lacks it.

Decisions where the brief is silent (also in docs/incident.md, "What dm_policy touches"):

* a key that exists is always rewritten, even on a disabled channel/account; a missing key is
  inserted only where the channel (and the account) is enabled -- a disabled one gets no DMs;
* legacy keys that still exist next to the canonical one (Discord/Slack/Google Chat ``dm.policy``
  on 2026.9.x) are rewritten too, so both readings say "disabled"; on clawdbot/2026.1.x those
  channels get ONLY ``dm.policy`` (``dmPolicy`` there makes the config invalid);
* a channel moltir has no row for is handled by what its block shows: existing ``dmPolicy`` /
  ``dm.policy`` keys (root and accounts) are rewritten; without either it counts as a channel
  with no DM key;
* channels with no DM key (buzz, tlon, twitch, ...) are reported, or, with
  ``no_dm_key: "disable-channel"``, get ``enabled: false`` on the root and on every account;
* ``channels.defaults`` and ``channels.modelByChannel`` are not channels;
* ``restore`` puts back exactly the recorded paths (deleting what moltir inserted, including an
  intermediate object such as ``dm: {...}`` it created); a path someone changed since is left
  and reported unless ``--force``. When the file is still byte-for-byte what moltir wrote, the
  result is the saved pre-image, byte for byte.

Modules: :mod:`.tables` (the channel tables), :mod:`.scan` (the paths to set), :mod:`.set` and
:mod:`.restore` (the two actions, registered in :mod:`moltir.actions`).
"""

from __future__ import annotations

from moltir.actions.dm_policy.restore import RestoreDmPolicy, is_dm_path, restored_value
from moltir.actions.dm_policy.scan import Scan, Target, scan
from moltir.actions.dm_policy.set import ABSENT, SECTION, WARM_CONFIG, SetDmPolicy
from moltir.actions.dm_policy.tables import ALL_DM, CURRENT, LEGACY, NOT_CHANNELS, ChannelRule, table_for

__all__ = ["ABSENT", "ALL_DM", "CURRENT", "LEGACY", "NOT_CHANNELS", "SECTION", "WARM_CONFIG", "ChannelRule",
           "RestoreDmPolicy", "Scan", "SetDmPolicy", "Target", "is_dm_path", "restored_value", "scan",
           "table_for"]
