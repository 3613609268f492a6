"""The OpenClaw adapter: which install moltir acts on, and what that install's release can do.

* :mod:`moltir.openclaw.install` -- discovery (binary, state dir, config, profile) and the
  :class:`~moltir.openclaw.install.Install` every action receives;
* :mod:`moltir.openclaw.versions` -- OpenClaw's ``YYYY.M.D`` release numbers;
* :mod:`moltir.openclaw.package` -- reading a release's version and facts from its package;
* :mod:`moltir.openclaw.capabilities` -- THE capability table: one answer per question an
  action asks ("may the gateway token be a SecretRef?", "which signal re-reads secrets?"),
  each with where it came from. Actions ask the table; they never compare versions.
"""

from moltir.openclaw.install import (
    CONFIG_NAMES,
    CREDENTIAL_VARS,
    DEFAULT_PORT,
    DEV_PORT,
    PROFILE_RE,
    SELECTOR_VARS,
    Install,
    Package,
    discover,
    parse_config_text,
    profile_port,
)

__all__ = ["CONFIG_NAMES", "CREDENTIAL_VARS", "DEFAULT_PORT", "DEV_PORT", "PROFILE_RE", "SELECTOR_VARS",
           "Install", "Package", "discover", "parse_config_text", "profile_port"]
