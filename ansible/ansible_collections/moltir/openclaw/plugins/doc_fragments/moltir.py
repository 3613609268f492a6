# -*- coding: utf-8 -*-
# Copyright: moltir contributors
# MIT License (see the collection's LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The install options every moltir command takes (moltir's --profile, --state-dir, ...)
    DOCUMENTATION = r"""
options:
  moltir_bin:
    description:
      - The moltir executable on the managed host, a name looked up on C(PATH) (and in C(~/.local/bin), where
        C(pipx) puts it, and C(/usr/local/bin)) or an absolute path.
    type: str
    default: moltir
  profile:
    description:
      - The OpenClaw profile (moltir's C(--profile), like C(openclaw --profile)).
    type: str
  state_dir:
    description:
      - The OpenClaw state dir (moltir's C(--state-dir); default C(~/.openclaw) of the user moltir runs as).
    type: path
  config:
    description:
      - The OpenClaw config file (moltir's C(--config); default from the state dir).
    type: path
  openclaw_bin:
    description:
      - The openclaw (or clawdbot) binary (moltir's C(--openclaw-bin); default from C(PATH)).
    type: path
  user:
    description:
      - Act on this user's install (moltir's C(--user)); needs root, that is C(become), e.g. for the
        C(User=openclaw) of the system unit OpenClaw's server installer writes.
    type: str
notes:
  - The module runs C(moltir <command> --json) on the managed host and reads its one JSON result (the
    C(moltir.result/1) envelope, returned as RV(moltir)); C(rc) is moltir's exit code (0 success, 1 a step
    failed, 2 bad input and nothing changed, 3 environment not ready, 4 another moltir holds the lock,
    5 verification failed, 130 interrupted) and the task fails when it is not 0, with moltir's message and hint
    as C(msg).
  - moltir runs as the connecting user, or as root with C(become) (system units of OpenClaw's server installer;
    moltir finds the unit's install by itself).
  - moltir never prints a token or a secret value; the module returns only what moltir printed.
requirements:
  - moltir on the managed host (C(pipx install moltir), or a clone's C(pip install .)).
"""

    # The options of the commands that run a runbook (contain, restore, drill)
    RUN = r"""
options:
  runbook:
    description:
      - Run another runbook (moltir's C(--runbook NAME|PATH)).
    type: str
  reason:
    description:
      - Why, recorded in the case (moltir's C(--reason), at most 2000 characters).
    type: str
  case_dir:
    description:
      - Folder of the case (moltir's C(--case-dir)).
    type: path
  revoke_devices:
    description:
      - Revoke paired device tokens too (moltir's C(--revoke-devices)).
    type: bool
    default: false
  clean_env:
    description:
      - Remove a stale C(OPENCLAW_GATEWAY_TOKEN) from C(<state>/.env) (moltir's C(--clean-env)).
    type: bool
    default: false
  allow_insecure_keyring:
    description:
      - Accept a plaintext or null keyring backend (moltir's C(--allow-insecure-keyring)).
    type: bool
    default: false
  force:
    description:
      - Override moltir's safety refusals (conflicts, a case that is not the latest; moltir's C(--force)).
    type: bool
    default: false
"""
