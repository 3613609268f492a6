# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)
"""moltir.openclaw.evidence_fetch on the controller: export on the host (the module), fetch the archive
(ansible.builtin.fetch, so become and every connection plugin work), verify its SHA-256 here against the
hash moltir recorded, note the transfer in the case's custody log, remove the host's temporary copy."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import socket

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

MODULE = "moltir.openclaw.evidence_fetch"
display = Display()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if not args.get("dest"):
            raise AnsibleActionFail("dest is required: a folder on the controller")
        exported = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        result.update(exported)
        if exported.get("failed") or exported.get("skipped") or self._task.check_mode:
            return result
        want = exported.get("sha256")
        remote = exported.get("archive")
        if not want or not remote:
            raise AnsibleActionFail("moltir's export result names no archive or hash: %s" % exported.get("msg"))
        host = task_vars.get("inventory_hostname") or "host"
        local_dir = os.path.join(os.path.abspath(os.path.expanduser(args["dest"])), host)
        if not os.path.isdir(local_dir):
            os.makedirs(local_dir, 0o700)
        name = "%s.tar.gz%s" % (exported.get("case_id") or os.path.basename(remote).split(".tar.gz")[0],
                                ".age" if exported.get("encrypted") else "")
        local = os.path.join(local_dir, name)
        if os.path.isfile(local) and sha256_of(local) == want:
            result["changed"] = False
            result["msg"] = "%s: already at %s (sha256 %s verified)" % (host, local, want)
        elif not self._fetch_verified(result, remote, local, want, host, task_vars):
            return result
        result.update(dest=local, verified=True, sha256=want)
        if boolean(args.get("custody_note", True), strict=False):
            self._custody_note(result, exported, local, host, task_vars)
        if not boolean(args.get("keep_remote", False), strict=False):
            target = exported.get("remote_tmp_dir") or remote
            removed = self._execute_module(module_name="ansible.legacy.file",
                                           module_args={"path": target, "state": "absent"}, task_vars=task_vars)
            result["remote_removed"] = not removed.get("failed")
        return result

    def _fetch_verified(self, result, remote, local, want, host, task_vars):
        """ansible.builtin.fetch of ``remote`` to ``local`` (through a .part file), kept only when its SHA-256
        is ``want``; False (with ``result`` failed and its message) otherwise."""
        part = local + ".part"
        if os.path.lexists(part):
            os.remove(part)
        fetch_task = self._task.copy()
        fetch_task.args.clear()
        fetch_task.args.update(src=remote, dest=part, flat=True, fail_on_missing=True, validate_checksum=True)
        fetch = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.fetch", task=fetch_task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
        fetched = fetch.run(task_vars=task_vars)
        if fetched.get("failed") or not os.path.isfile(part):
            result.update(failed=True, msg="fetching %s from %s failed: %s" % (remote, host, fetched.get("msg")),
                          fetch=fetched)
            return False
        os.chmod(part, 0o600)
        got = sha256_of(part)
        if got != want:
            os.remove(part)
            result.update(failed=True, verified=False,
                          msg="%s: the fetched archive's SHA-256 is %s, moltir recorded %s; copy removed"
                              % (host, got, want))
            return False
        os.rename(part, local)
        result["changed"] = True
        result["msg"] = "%s: %s -> %s (sha256 %s verified on the controller)" % (host, remote, local, want)
        return True

    def _custody_note(self, result, exported, local, host, task_vars):
        """``moltir evidence custody CASE --note ...`` on the host: where the archive went, hash verified."""
        note = "archive %s (sha256 %s) fetched by Ansible to %s:%s; SHA-256 verified there" % (
            os.path.basename(exported.get("archive")), exported.get("sha256"), socket.gethostname(), local)
        argv = [exported.get("moltir_path") or "moltir", "evidence", "custody", exported.get("case_dir"),
                "--note", note, "--json"]
        custody = self._execute_module(module_name="ansible.legacy.command", module_args={"argv": argv},
                                       task_vars=task_vars)
        result["custody"] = {"rc": custody.get("rc"), "note": note}
        if custody.get("rc") != 0:
            display.warning("%s: the custody note could not be recorded on the host: %s"
                            % (host, custody.get("stderr") or custody.get("msg")))
