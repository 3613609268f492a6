#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: evidence_fetch
short_description: Export a moltir case on the host, bring the archive to the controller, verify its SHA-256 there
description:
  - On the managed host, C(moltir evidence export --json) writes the case as a deterministic archive (optionally
    encrypted with age) into a private temporary folder; moltir records the archive's SHA-256 in the case's
    custody log and prints it.
  - The action plugin then fetches the archive to O(dest)C(/<inventory_hostname>/<case id>.tar.gz) on the controller
    (mode 0600 in a 0700 folder), computes its SHA-256 there and fails when it differs from moltir's; then it appends
    a custody note on the host (who fetched it, where to, the verified hash) and removes the host's temporary copy
    (the case itself stays).
  - An identical archive already at the destination is not fetched again (C(changed=false)).
  - The archive holds secrets (the pre-incident config with its tokens, channel credentials, transcripts); keep
    O(dest) private, or use O(encrypt).
  - In check mode nothing is exported or fetched.
version_added: "0.1.0"
author:
  - moltir contributors
options:
  dest:
    description:
      - Folder on the controller; the archive lands in C(<dest>/<inventory_hostname>/).
    type: path
    required: true
  case:
    description:
      - The case to export (a folder, a case id or a unique id prefix); default the install's latest case.
    type: str
  encrypt:
    description:
      - Encrypt the archive with age to these public keys (C(age1...), or C(ssh-ed25519)/C(ssh-rsa) keys); recorded
        in the custody log (moltir's C(--encrypt), repeated).
    type: list
    elements: str
    default: []
  remote_dir:
    description:
      - Folder on the host to write the archive in; default a fresh private temporary folder, removed afterwards.
    type: path
  keep_remote:
    description:
      - Keep the host's copy of the archive after the controller verified it.
    type: bool
    default: false
  custody_note:
    description:
      - Record the transfer in the case's custody log on the host (C(moltir evidence custody)).
    type: bool
    default: true
extends_documentation_fragment:
  - moltir.openclaw.moltir
  - ansible.builtin.action_common_attributes
attributes:
  action:
    support: full
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: ansible.builtin.fetch
"""

EXAMPLES = r"""
- name: Bring every host's case to the controller
  moltir.openclaw.evidence_fetch:
    dest: "{{ playbook_dir }}/evidence"
  register: evidence

- name: Encrypted for the analyst
  moltir.openclaw.evidence_fetch:
    dest: /srv/incidents/42
    encrypt:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
"""

RETURN = r"""
dest:
  description: The archive on the controller.
  returned: success
  type: str
sha256:
  description: SHA-256 of the archive, as moltir recorded it and as verified on the controller.
  returned: success
  type: str
verified:
  description: The controller's SHA-256 equals moltir's.
  returned: success
  type: bool
archive:
  description: Where moltir wrote the archive on the host (removed afterwards unless O(keep_remote)).
  returned: success
  type: str
case_id:
  description: The exported case.
  returned: success
  type: str
case_dir:
  description: The case folder on the host.
  returned: success
  type: str
size:
  description: Size of the archive in bytes.
  returned: success
  type: int
encrypted:
  description: The archive is age-encrypted.
  returned: success
  type: bool
msg:
  description: One line.
  returned: always
  type: str
rc:
  description: moltir's exit code (of the export).
  returned: when moltir ran
  type: int
moltir:
  description: moltir's JSON result of the export (the C(moltir.result/1) envelope).
  returned: when moltir ran
  type: dict
"""

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.moltir.openclaw.plugins.module_utils.moltir import (
    Moltir,
    data_of,
    install_args,
    install_spec,
    message,
)


def main():
    spec = install_spec()
    spec.update(dest=dict(type="path", required=True), case=dict(type="str"),
                encrypt=dict(type="list", elements="str", default=[]), remote_dir=dict(type="path"),
                keep_remote=dict(type="bool", default=False), custody_note=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    moltir = Moltir(module)
    if module.check_mode:
        module.exit_json(changed=True, msg="check mode: the case would be exported and fetched")
    made = None
    if module.params["remote_dir"]:
        outdir = module.params["remote_dir"]
    else:
        outdir = made = tempfile.mkdtemp(prefix="moltir-export-")   # 0700: the archive holds secrets
    name = "%s-%s.tar.gz" % (module.params["case"] or "case", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    args = ["evidence", "export"] + ([module.params["case"]] if module.params["case"] else [])
    args += ["-o", os.path.join(outdir, name)] + install_args(module.params)
    for recipient in module.params["encrypt"]:
        args += ["--encrypt", recipient]
    envelope, _rc, _err = moltir.run(args)
    data = data_of(envelope)
    result = {"changed": bool(envelope.get("ok")), "rc": envelope.get("exit_code"), "moltir": envelope,
              "msg": message(envelope), "moltir_path": moltir.path, "remote_tmp_dir": made}
    if not envelope.get("ok"):
        if made and not os.listdir(made):
            os.rmdir(made)
        module.fail_json(**result)
    case_dir = data.get("case_dir") or ""
    result.update(archive=data.get("archive"), sha256=data.get("sha256"), size=data.get("size"),
                  encrypted=bool(data.get("encrypted")), case_dir=case_dir,
                  case_id=os.path.basename(case_dir.rstrip("/")) or None)
    for warning in data.get("warnings") or []:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
