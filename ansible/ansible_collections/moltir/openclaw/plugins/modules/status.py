#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: status
short_description: What moltir's current case says (open, contained, restored), each effect re-checked
description:
  - Runs C(moltir status --json) on the managed host. Read-only, it never changes anything, so it always reports
    C(changed=false) and runs in check mode too.
version_added: "0.1.0"
author:
  - moltir contributors
options:
  all_profiles:
    description:
      - Every install found, one report each (moltir's C(--all-profiles)).
    type: bool
    default: false
  case_dir:
    description:
      - Show this case instead of the install's latest (moltir's C(--case-dir)).
    type: path
  verify:
    description:
      - Also check the case journal's hash chain (moltir's C(--verify)).
    type: bool
    default: false
extends_documentation_fragment:
  - moltir.openclaw.moltir
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Which hosts are contained
  moltir.openclaw.status:
  register: st

- ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: {{ st.state }}"
"""

RETURN = r"""
state:
  description: moltir's status of the case (C(none), C(open), C(contained), C(regressed), C(restored), C(audited) ...).
  returned: without all_profiles
  type: str
  sample: contained
contained:
  description: The install is contained now.
  returned: without all_profiles
  type: bool
case_id:
  description: The case reported on.
  returned: when there is a case
  type: str
install:
  description: The install moltir found (binary, config_path, home, profile, state_dir, version).
  returned: when found
  type: dict
effects:
  description: Each recorded effect re-checked now (C(verified now), C(gone) ...).
  returned: when there is a case
  type: dict
installs:
  description: With O(all_profiles), one entry per install (install, state_dir, state, contained, case_id).
  returned: with all_profiles
  type: list
  elements: dict
msg:
  description: One line.
  returned: always
  type: str
rc:
  description: moltir's exit code.
  returned: always
  type: int
moltir:
  description: moltir's whole JSON result (the C(moltir.result/1) envelope).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.moltir.openclaw.plugins.module_utils.moltir import (
    Moltir,
    all_profiles_exclusions,
    data_of,
    install_args,
    install_spec,
    message,
)


def one(report):
    case = report.get("case") if isinstance(report.get("case"), dict) else {}
    state = report.get("status")
    return {"state": state, "contained": state == "contained", "case_id": case.get("id"),
            "install": report.get("install"), "effects": _effects(report.get("effects"))}


def _effects(effects):
    """{step id: what holds now}: moltir's {step id: {holds, now}} (or, from an older moltir, the text)."""
    if not isinstance(effects, dict):
        return None
    return dict((k, v.get("now") if isinstance(v, dict) else v) for k, v in effects.items())


def main():
    spec = install_spec()
    spec.update(all_profiles=dict(type="bool", default=False), case_dir=dict(type="path"),
                verify=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, mutually_exclusive=all_profiles_exclusions())
    args = ["status"] + install_args(module.params)
    if module.params["all_profiles"]:
        args.append("--all-profiles")
    if module.params["case_dir"]:
        args += ["--case-dir", module.params["case_dir"]]
    if module.params["verify"]:
        args.append("--verify")
    envelope, _rc, _err = Moltir(module).run(args)
    data = data_of(envelope)
    result = {"changed": False, "rc": envelope.get("exit_code"), "moltir": envelope, "command": "status"}
    if isinstance(data.get("installs"), list):
        result["installs"] = []
        for inst in data["installs"]:
            entry = one(inst.get("report") or {})
            entry.update(install=inst.get("install"), state_dir=inst.get("state_dir"))
            result["installs"].append(entry)
        result["msg"] = "; ".join("%s: %s" % (i["install"], i["state"]) for i in result["installs"])
    else:
        result.update((k, v) for k, v in one(data).items() if v is not None)
        result["msg"] = "%s%s" % (data.get("status") or message(envelope),
                                  " (case %s)" % result["case_id"] if result.get("case_id") else "")
    if not envelope.get("ok"):
        result["msg"] = message(envelope)
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
