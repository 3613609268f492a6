#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: contain
short_description: Contain an OpenClaw gateway with moltir (gateway down, DMs off, new token, evidence, audit)
description:
  - Runs C(moltir contain --yes --json) on the managed host. moltir stops the gateway (and keeps it down), sets every
    DM policy to C(disabled), rotates the gateway token into the OS keyring, seals the evidence in a case
    folder and runs OpenClaw's deep security audit.
  - Idempotent. On a host whose containment still holds, moltir has nothing to do and the task reports
    C(changed=false). On a contained host whose gateway came back (or whose DM policy someone reopened),
    moltir contains it again and the task reports C(changed=true).
  - In check mode it runs C(moltir contain --dry-run) (nothing changes) and predicts C(changed); with
    C(--diff) it shows moltir's config diff (unified, secret values masked by moltir). Outside check mode,
    C(--diff) asks moltir for that plan first (read-only, about a second), then contains.
  - A failed containment fails the task with moltir's message; running it again resumes the case at the first
    step not verified done.
version_added: "0.1.0"
author:
  - moltir contributors
options:
  all_profiles:
    description:
      - Contain every install moltir finds on the host (each profile; as root, every system unit's too), in
        parallel, one case each and one incident id (moltir's C(--all-profiles)).
      - Cannot be combined with O(profile), O(state_dir), O(config) or O(user).
    type: bool
    default: false
  new_case:
    description:
      - Open a new case instead of resuming the install's last unfinished one (moltir's C(--new-case)).
    type: bool
    default: false
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
  - module: moltir.openclaw.restore
  - module: moltir.openclaw.status
  - module: moltir.openclaw.evidence_fetch
"""

EXAMPLES = r"""
- name: Contain every gateway (ad hoc, system units need become)
  # ansible all -m moltir.openclaw.contain -a 'reason="shared skill compromised"' -b

- name: Contain the gateway of the user Ansible connects as
  moltir.openclaw.contain:
    reason: leaked shared token
  register: contained

- name: Contain every profile of the openclaw user of a system unit
  moltir.openclaw.contain:
    all_profiles: true
    reason: incident 42
  become: true

- name: Only show what would change (the config diff, masked)
  moltir.openclaw.contain:
  check_mode: true
  diff: true
"""

RETURN = r"""
changed:
  description: A step changed the host (in check mode, a step would run).
  returned: always
  type: bool
contained:
  description: moltir reported the install contained (every step done now or earlier and still holding);
    false when the containment is incomplete (the task failed).
  returned: when not in check mode
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
  description: The case moltir worked in.
  returned: when a case was opened or resumed
  type: str
  sample: 20261206T195113Z-f03b
case_dir:
  description: The case folder on the host.
  returned: when a case was opened or resumed
  type: str
status:
  description: The run's status (C(ok), C(noop), C(failed), C(interrupted); C(dry-run) in check mode).
  returned: when moltir ran the runbook
  type: str
steps:
  description: Each step's status (C(done), C(forced), C(done-earlier), C(already), C(skipped), C(failed), C(not-run)).
  returned: when moltir ran the runbook
  type: dict
  sample: {"stop-gateway": "done", "disable-dms": "done", "rotate-token": "done", "credentials": "done",
           "snapshot": "done", "deep-audit": "done"}
regressed:
  description: Steps done earlier whose effect was gone (the gateway running again ...), with why; run again.
  returned: when moltir ran the runbook
  type: dict
token_fingerprint:
  description: First 8 hex digits of the SHA-256 of the gateway token now in place (never the token).
  returned: when this run rotated the token
  type: str
installs:
  description: With O(all_profiles), one entry per install (install, profile, state_dir, exit_code, case_id, status,
    token_fingerprint).
  returned: with all_profiles
  type: list
  elements: dict
diff:
  description: moltir's config diff per step, unified, secret values masked (C(prepared) entries).
  returned: in check mode or with --diff
  type: list
  elements: dict
plan:
  description: In check mode, each planned step (id, action, already_done, summary, error).
  returned: in check mode
  type: list
  elements: dict
moltir:
  description: moltir's whole JSON result (the C(moltir.result/1) envelope), for C(moltir fleet report).
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
    spec.update(all_profiles=dict(type="bool", default=False), new_case=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=all_profiles_exclusions())
    run_runbook(module, "contain", contained=(True, False))


if __name__ == "__main__":
    main()
