# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)
"""What every moltir.openclaw module shares: the options that mirror moltir's flags, running
``moltir <command> --json`` on the managed host, reading its one JSON result (the ``moltir.result/1``
envelope: ``{"schema", "ok", "command", "exit_code", "data", "errors"}``) and turning it into
Ansible's return values (``changed``, ``failed``, ``msg``, ``rc``, ``diff``).

moltir does the work and the redaction: a module never reads the OpenClaw config or a keyring itself,
and returns only what moltir printed (moltir never prints a token; config diffs come masked).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

SCHEMA = "moltir.result/1"
#: step statuses that changed something on the host (moltir's engine: "done-earlier", "already",
#: "skipped", "not-run" and "failed" did not, by themselves)
CHANGED_STEP_STATUSES = ("done", "forced")
#: moltir's exit codes (docs/exit-codes.md)
EXIT_NAMES = {0: "ok", 1: "step_failed", 2: "usage", 3: "environment", 4: "locked", 5: "verification",
              130: "interrupted"}

INSTALL_FLAGS = (("profile", "--profile"), ("state_dir", "--state-dir"), ("config", "--config"),
                 ("openclaw_bin", "--openclaw-bin"), ("user", "--user"))
RUN_VALUE_FLAGS = (("runbook", "--runbook"), ("reason", "--reason"), ("case_dir", "--case-dir"))
RUN_BOOL_FLAGS = (("revoke_devices", "--revoke-devices"), ("all_profiles", "--all-profiles"),
                  ("new_case", "--new-case"), ("clean_env", "--clean-env"),
                  ("allow_insecure_keyring", "--allow-insecure-keyring"), ("force", "--force"))
#: options that select one install: --all-profiles acts on every install and refuses them
SELECTORS = ("profile", "state_dir", "config", "user")


def install_spec():
    return dict(
        moltir_bin=dict(type="str", default="moltir"),
        profile=dict(type="str"),
        state_dir=dict(type="path"),
        config=dict(type="path"),
        openclaw_bin=dict(type="path"),
        user=dict(type="str"),
    )


def run_spec():
    """Options of the commands that run a runbook (contain, restore, drill)."""
    spec = install_spec()
    spec.update(
        runbook=dict(type="str"),
        reason=dict(type="str"),
        case_dir=dict(type="path"),
        revoke_devices=dict(type="bool", default=False),
        clean_env=dict(type="bool", default=False),
        allow_insecure_keyring=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
    )
    return spec


def install_args(params):
    args = []
    for opt, flag in INSTALL_FLAGS:
        if params.get(opt):
            args += [flag, str(params[opt])]
    return args


def run_args(params):
    args = install_args(params)
    for opt, flag in RUN_VALUE_FLAGS:
        if params.get(opt):
            args += [flag, str(params[opt])]
    for opt, flag in RUN_BOOL_FLAGS:
        if params.get(opt):
            args.append(flag)
    return args


def all_profiles_exclusions():
    return [("all_profiles", s) for s in SELECTORS]


class MoltirNotFound(Exception):
    pass


class Moltir(object):
    """moltir on the managed host, run as the connecting (or become) user."""

    def __init__(self, module):
        self.module = module
        self.path = self._find(module.params.get("moltir_bin") or "moltir")

    def _find(self, name):
        if os.sep in name:
            path = os.path.expanduser(name)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                self.module.fail_json(msg="moltir_bin %s is not an executable file" % path, rc=127, changed=False)
            return path
        # pipx and `pip install --user` put it in ~/.local/bin, which a non-interactive SSH session's
        # PATH often lacks
        opt_dirs = [os.path.expanduser("~/.local/bin"), "/usr/local/bin", "/opt/pipx/bin"]
        path = self.module.get_bin_path(name, required=False, opt_dirs=opt_dirs)
        if not path:
            self.module.fail_json(
                msg="%s not found on the host (PATH, ~/.local/bin, /usr/local/bin): install moltir there "
                    "(pipx install moltir) or set moltir_bin to its path" % name, rc=127, changed=False)
        return path

    def run(self, args):
        """``moltir ARGS --json``: (envelope, rc, stderr). The envelope is always a dict: when moltir
        printed no JSON (it crashed, or an old moltir), the module fails with its stderr."""
        argv = [self.path] + list(args) + ["--json"]
        rc, out, err = self.module.run_command(argv, environ_update={"NO_COLOR": "1"})
        try:
            envelope = json.loads(out)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or envelope.get("schema") != SCHEMA:
            tail = (err or out or "").strip().splitlines()[-15:]
            self.module.fail_json(
                msg="moltir printed no %s result (rc %s): %s" % (SCHEMA, rc, " | ".join(tail) or "no output"),
                rc=rc, stdout=out, stderr=err, cmd=argv, changed=False)
        return envelope, rc, err


def data_of(envelope):
    data = envelope.get("data")
    return data if isinstance(data, dict) else {}


def message(envelope):
    """One line for ``msg``: moltir's own message, or its first error with the hint."""
    data = data_of(envelope)
    errors = envelope.get("errors") or []
    if errors:
        first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
        text = first.get("message") or "moltir failed"
        if first.get("hint"):
            text = "%s (hint: %s)" % (text, first["hint"])
            if "sudo " in first["hint"]:   # moltir's "run it as root" hint, in Ansible's words
                text += " (with Ansible: become: true, or ansible-playbook -b)"
        if len(errors) > 1:
            text += " (+%d more error(s))" % (len(errors) - 1)
        return text
    if data.get("installs") is not None:
        return installs_message(envelope.get("command") or "moltir", data)
    return data.get("message") or ("moltir %s: exit %s" % (envelope.get("command"), envelope.get("exit_code")))


def installs_message(command, data):
    parts = []
    for inst in data.get("installs") or []:
        label = inst.get("install") or inst.get("profile") or inst.get("state_dir") or "?"
        if inst.get("error"):
            parts.append("%s: %s" % (label, inst["error"].get("message")))
        elif isinstance(inst.get("result"), dict):
            parts.append("%s: %s" % (label, inst["result"].get("message") or inst["result"].get("status")))
        else:
            parts.append("%s: exit %s" % (label, inst.get("exit_code")))
    return "%s of %d install(s): %s" % (command, len(parts), "; ".join(parts))


def run_changed(data):
    """A run (or ``--all-profiles`` runs) changed the host when one of its steps did."""
    if isinstance(data.get("installs"), list):
        return any(run_changed(i.get("result") or {}) for i in data["installs"] if isinstance(i, dict))
    return any(isinstance(s, dict) and s.get("status") in CHANGED_STEP_STATUSES for s in data.get("steps") or [])


def plan_changed(data):
    """A ``--dry-run`` plan would change the host when one of its steps is not already done."""
    return any(isinstance(p, dict) and not p.get("already_done") for p in data.get("plan") or [])


def plan_diff(data, label=None):
    """Ansible's ``diff``: moltir's config diff of each step (unified, secret values masked by moltir)."""
    out = []
    for p in data.get("plan") or []:
        if isinstance(p, dict) and p.get("diff"):
            header = "# %smoltir step %s (%s)\n" % ("%s: " % label if label else "", p.get("id"), p.get("action"))
            out.append({"prepared": header + p["diff"]})
    return out


def fingerprint(data):
    """The gateway token's fingerprint a run left in place (the new one), when the run says."""
    for step in reversed(data.get("steps") or []):
        details = step.get("details") if isinstance(step, dict) else None
        if isinstance(details, dict):
            fp = details.get("new_fingerprint") or details.get("token_fingerprint")
            if fp:
                return fp
    return None


def summary(envelope):
    """Return values common to every run: case, status, steps (id: status) and the token fingerprint."""
    data = data_of(envelope)
    out = {"rc": envelope.get("exit_code"), "moltir": envelope}
    if isinstance(data.get("installs"), list):
        out["installs"] = [{"install": i.get("install"), "profile": i.get("profile"), "state_dir": i.get("state_dir"),
                            "exit_code": i.get("exit_code"),
                            "case_id": (i.get("result") or {}).get("case_id"),
                            "status": (i.get("result") or {}).get("status"),
                            "token_fingerprint": fingerprint(i.get("result") or {})}
                           for i in data["installs"] if isinstance(i, dict)]
        return out
    for key in ("case_id", "case_dir", "status", "runbook", "regressed"):
        if key in data:
            out[key] = data[key]
    if data.get("steps"):
        out["steps"] = dict((s.get("id"), s.get("status")) for s in data["steps"] if isinstance(s, dict))
    fp = fingerprint(data)
    if fp:
        out["token_fingerprint"] = fp
    return out


def run_runbook(module, command, extra_args=(), contained=None):
    """contain / restore / drill: check mode -> ``--dry-run`` (nothing changes); otherwise the run, with
    the dry-run's config diff first when Ansible asks for ``--diff``. ``contained``: (value when moltir
    succeeded, value when it failed) of the ``contained`` return value, or None. Exits the module."""
    moltir = Moltir(module)
    args = [command] + run_args(module.params) + list(extra_args) + ["--yes"]
    params = module.params
    result = {"changed": False, "command": command, "profile": params.get("profile")}
    if module.check_mode or module._diff:
        plan = dry_run(module, moltir, command, args)
        result["diff"] = plan["diff"]
        if module.check_mode:
            result.update(changed=plan["changed"], dry_run=True, rc=plan["rc"], msg=plan["msg"], moltir=plan["moltir"],
                          plan=plan["plan"])
            if plan["rc"] != 0:
                module.fail_json(**result)
            module.exit_json(**result)
    envelope, _rc, _err = moltir.run(args)
    result.update(summary(envelope))
    result["changed"] = run_changed(data_of(envelope))
    result["msg"] = message(envelope)
    if contained is not None:
        result["contained"] = contained[0] if envelope.get("ok") else contained[1]
    if not envelope.get("ok"):
        module.fail_json(**result)
    module.exit_json(**result)


def dry_run(module, moltir, command, args):
    """The plan of ``args`` (``--dry-run``). ``--all-profiles --dry-run`` prints one plan per install as
    text (no single JSON result), so for it each install found by ``moltir status --all-profiles`` gets
    its own ``--dry-run --state-dir DIR``."""
    if not module.params.get("all_profiles"):
        envelope, rc, _err = moltir.run(args + ["--dry-run"])
        data = data_of(envelope)
        return {"rc": envelope.get("exit_code", rc), "changed": plan_changed(data), "diff": plan_diff(data),
                "msg": message(envelope), "moltir": envelope,
                "plan": [dict((k, p.get(k)) for k in ("id", "action", "already_done", "summary", "error"))
                         for p in data.get("plan") or [] if isinstance(p, dict)]}
    status, _rc, _err = moltir.run(["status", "--all-profiles"] + install_args({"openclaw_bin":
                                                                                 module.params.get("openclaw_bin")}))
    installs = data_of(status).get("installs") or []
    base = [a for a in args if a != "--all-profiles"]
    out = {"rc": 0, "changed": False, "diff": [], "msg": "", "plan": []}
    entries = []
    msgs = []
    for inst in installs:
        label = inst.get("install") or inst.get("state_dir")
        envelope, rc, _err = moltir.run(base + ["--dry-run", "--state-dir", str(inst.get("state_dir"))])
        data = data_of(envelope)
        code = envelope.get("exit_code", rc)
        out["rc"] = out["rc"] or code
        out["changed"] = out["changed"] or plan_changed(data)
        out["diff"] += plan_diff(data, label)
        profile = ((inst.get("report") or {}).get("install") or {}).get("profile")
        entries.append({"install": label, "state_dir": inst.get("state_dir"), "profile": profile, "exit_code": code,
                        "result": data})
        msgs.append("%s: %s" % (label, message(envelope)))
    if not installs:
        out["rc"] = 3
    out["msg"] = "; ".join(msgs) or "no OpenClaw install found"
    # the shape of moltir's own --all-profiles result, so that `moltir fleet report` reads both alike
    out["moltir"] = {"schema": SCHEMA, "ok": out["rc"] == 0, "command": args[0], "exit_code": out["rc"],
                     "data": {"all_profiles": True, "dry_run": True, "installs": entries}, "errors": []}
    return out
