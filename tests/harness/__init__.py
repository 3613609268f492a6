"""Test harness: real OpenClaw releases, fake Telegram/model servers, a private Secret Service.

Importable as ``tests.harness`` with the repository root on ``sys.path`` (the integration
conftest puts it there; ``python -m tests.harness.demo`` run from the root gets it for free).

Modules: ``releases`` (what ``make deps`` installed), ``home`` (isolated home + config + env),
``configs`` (the commented JSON5 per release), ``gateway`` (run/stop the real gateway),
``transcripts`` (one real agent turn), ``secret_service`` (private D-Bus + gnome-keyring),
``clawdbot`` (file-only clawdbot layout), ``procs`` (find/kill a state dir's processes),
``nspawn`` (a real systemd: the host's own, booted in a throwaway systemd-nspawn container),
``podman`` (a real container engine: rootful podman with a private store, the gateway inside),
``fleet`` (several hosts, each a network namespace with its own sshd, user, keyring and gateway, for
Ansible; with ``fleet_hosts`` and ``fleet_system``),
``faketg`` / ``fakellm`` / ``tls`` / ``net`` / ``servers`` (loopback fakes and helpers).
"""

from tests.harness.procs import assert_none_left, kill_leftovers, processes_for

__all__ = ["assert_none_left", "kill_leftovers", "processes_for"]
