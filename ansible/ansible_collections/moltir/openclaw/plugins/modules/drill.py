#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: drill
short_description: Rotation drill with moltir (rotate the gateway token, prove new accepted and old refused)
description:
  - Runs C(moltir drill --yes --json) on the managed host. moltir puts a new gateway token into the keyring,
    applies it to the running gateway the way its release re-reads it, proves it over HTTP on the host's
    loopback (new token accepted, old refused) and records the drill. The gateway must be running.
  - Every drill rotates the token, so a successful drill always reports C(changed=true).
  - In check mode it runs C(moltir drill --dry-run) (nothing changes).
version_added: "0.1.0"
author:
  - moltir contributors
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
"""

EXAMPLES = r"""
- name: Weekly rotation drill on every gateway
  moltir.openclaw.drill:
    reason: weekly drill
"""

RETURN = r"""
changed:
  description: The token was rotated (in check mode, would be).
  returned: always
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
  description: The drill's case.
  returned: when moltir ran the runbook
  type: str
steps:
  description: Each step's status.
  returned: when moltir ran the runbook
  type: dict
token_fingerprint:
  description: Fingerprint of the new token (first 8 hex digits of its SHA-256).
  returned: when the drill rotated the token
  type: str
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
from ansible_collections.moltir.openclaw.plugins.module_utils.moltir import run_runbook, run_spec


def main():
    module = AnsibleModule(argument_spec=run_spec(), supports_check_mode=True)
    run_runbook(module, "drill")


if __name__ == "__main__":
    main()
