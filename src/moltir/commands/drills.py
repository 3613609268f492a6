"""Rotation drills: their history, and the schedule that runs them unattended.

History
    one JSON line per drill in ``<moltir home>/drills/<install key>.jsonl`` (0600, appended with
    O_APPEND + fsync): when it started and finished, how long it took, the outcome and exit
    code, the case, the token fingerprints (new, old: first 8 hex of SHA-256, never a token)
    and the HTTP proof (400 new / 401 old). ``moltir drill`` appends through
    :func:`record_result` whatever the outcome: a failed drill is history too.

Schedule
    ``every`` is ``daily`` (03:17 every day), ``weekly`` (Monday 03:17) or a five-field cron
    expression (``m h dom mon dow``: numbers, ``*``, lists, ranges, ``*/step``). The job runs
    ``moltir drill --yes`` for this install (its state dir, config, profile and openclaw binary
    spelled out, so the job does not depend on the scheduler's environment):

    * Linux: a systemd user service + timer, ``~/.config/systemd/user/moltir-drill-<key>.{service,timer}``
      (``Persistent=true``: a drill missed while the machine was off runs at the next boot),
      enabled with ``systemctl --user enable --now`` when a user manager is reachable;
    * macOS: a LaunchAgent, ``~/Library/LaunchAgents/ai.moltir.drill.<key>.plist``, loaded with
      ``launchctl bootstrap gui/<uid>``;
    * anywhere: ``--print`` gives the crontab line instead (on Linux with the user bus address,
      so the keyring is reachable from cron).

    The drill needs the keyring unlocked when it runs (a systemd user timer runs in the user's
    manager, which has the session bus; the login keyring must be unlocked, as for the gateway).

The history lives in :mod:`moltir.commands.drill_history`, the schedule in
:mod:`moltir.commands.drill_schedule`; both are re-exported here.
"""

from moltir.commands.drill_history import *  # noqa: F403
from moltir.commands.drill_schedule import *  # noqa: F403
