#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restore
short_description: Undo a moltir containment (DM policies back, gateway up on the NEW token)
description:
  - Runs C(moltir restore --yes --json) on the managed host, in the case it undoes (by default the install's
    latest). Each DM policy path moltir changed goes back to its recorded value, the gateway starts again the
    way it ran, on the new token, the token is proved (new accepted, old refused) and the deep audit runs with
    the gateway up.
  - Idempotent. A case already restored is a no-op (C(changed=false)).
  - In check mode it runs C(moltir restore --dry-run) (nothing changes); with C(--diff) it shows the config
    diff moltir would apply (secret values masked by moltir).
  - It never brings the old token back.
version_added: "0.1.0"
author:
  - moltir contributors
options:
  all_profiles:
    description:
      - Restore every install found that has a case to restore (moltir's C(--all-profiles)).
      - Cannot be combined with O(profile), O(state_dir), O(config) or O(user).
    type: bool
    default: false
  reopen_open:
    description:
      - What a DM policy that was C(open) (anyone may write to the assistant) goes back to (moltir's
        C(--reopen-open)); everything else goes back exactly as it was.
    type: str
    choices: [open, pairing, allowlist, disabled]
    default: open
  accept_risk:
    description:
      - Security audit check ids whose risk the restore may bring back (moltir's C(--accept-risk), once
        each), e.g. C(channels.telegram.dm.open) or C(security.exposure.open_groups_with_elevated) for a DM
        policy that goes back to C(open). Without the ids it needs, moltir refuses the restore (rc 2) and
        changes nothing; C(moltir restore --dry-run) (check mode) names them. An id not needed is ignored.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - moltir.openclaw.moltir
  - moltir.openclaw.moltir.run
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
seealso:
  - module: moltir.openclaw.contain
"""

EXAMPLES = r"""
- name: Bring the gateway back on its new token, open DMs as pairing
  moltir.openclaw.restore:
    reopen_open: pairing
  register: restored

- name: Put the open DMs back as they were, the audit's finding accepted
  moltir.openclaw.restore:
    accept_risk:
      - security.exposure.open_groups_with_elevated

- name: Every profile of a system unit's user
  moltir.openclaw.restore:
    all_profiles: true
  become: true
"""

RETURN = r"""
changed:
  description: A step changed the host (in check mode, a step would run).
  returned: always
  type: bool
contained:
  description: False once the restore succeeded (the install runs again).
  returned: when the restore succeeded
  type: bool
msg:
  description: moltir's message (on failure its error and hint).
  returned: always
  type: str
rc:
  description: moltir's exit code.
  returned: always
  type: int
case_id:
  description: The case restored.
  returned: when moltir ran the runbook
  type: str
status:
  description: The run's status (C(ok), C(noop), C(failed) ...).
  returned: when moltir ran the runbook
  type: str
steps:
  description: Each step's status.
  returned: when moltir ran the runbook
  type: dict
token_fingerprint:
  description: Fingerprint of the token the restored gateway accepts (first 8 hex digits of its SHA-256).
  returned: when the restore proved the token
  type: str
installs:
  description: With O(all_profiles), one entry per install.
  returned: with all_profiles
  type: list
  elements: dict
diff:
  description: moltir's config diff per step (unified, secret values masked).
  returned: in check mode or with --diff
  type: list
  elements: dict
moltir:
  description: moltir's whole JSON result (the C(moltir.result/1) envelope).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.moltir.openclaw.plugins.module_utils.moltir import (
    all_profiles_exclusions,
    run_runbook,
    run_spec,
)


def main():
    spec = run_spec()
    spec.update(all_profiles=dict(type="bool", default=False),
                reopen_open=dict(type="str", default="open", choices=["open", "pairing", "allowlist", "disabled"]),
                accept_risk=dict(type="list", elements="str", default=[]))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=all_profiles_exclusions())
    extra = []
    if module.params["reopen_open"] != "open":
        extra = ["--reopen-open", module.params["reopen_open"]]
    for check_id in module.params["accept_risk"] or []:
        extra += ["--accept-risk", check_id]
    run_runbook(module, "restore", extra_args=extra, contained=(False, None))


if __name__ == "__main__":
    main()
