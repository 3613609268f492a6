"""``moltir harden``: lock an install down before anything goes wrong, reversibly.

Actions (registered in :mod:`moltir.actions`): :class:`~.config_step.HardenConfig` (one setting per
step: DM access, groups, bind, Control UI insecure auth, tool deny list, sandbox mode; the edits are
:mod:`.settings`'), :class:`~.perms.HardenPermissions` (modes), :class:`~.audit_check.HardenVerify`
(the real audit no longer reports what the steps target), :class:`~.approvals.HardenExecApprovals`
(exec approvals defaults where the release keeps them, :mod:`.exec_store`) and
:class:`~.undo.HardenUndo` (config bytes, approvals and modes back exactly). Everything a step
changes is recorded in the case's restore.json section ``harden`` before the change.
"""

from moltir.actions.harden.approvals import HardenExecApprovals
from moltir.actions.harden.audit_check import HardenVerify
from moltir.actions.harden.config_step import HardenConfig
from moltir.actions.harden.perms import HardenPermissions
from moltir.actions.harden.undo import HardenUndo

__all__ = ["HardenConfig", "HardenExecApprovals", "HardenPermissions", "HardenUndo", "HardenVerify"]
