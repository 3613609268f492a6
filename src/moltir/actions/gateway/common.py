"""What gateway.stop and gateway.start share: the relaunch environment, the start log, timing."""

from __future__ import annotations

import datetime as dt

from moltir.actions.base import StepContext

# Environment variables whose VALUES are recorded for a relaunch: they select the install or
# the runtime and never hold a credential. Every other variable is recorded by NAME only.
RELAUNCH_VARS = ("HOME", "OPENCLAW_HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH", "OPENCLAW_PROFILE",
                 "OPENCLAW_GATEWAY_PORT", "CLAWDBOT_STATE_DIR", "CLAWDBOT_CONFIG_PATH", "TMPDIR", "PATH",
                 "NODE_EXTRA_CA_CERTS", "OPENCLAW_SKIP_CHANNELS")
SECRET_ARGS = ("--token", "--password", "--password-file")
START_LOG = "moltir-gateway-start.log"
POLL_S = 0.25


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def step_timeout(ctx: StepContext, default: float) -> float:
    """The step-level ``timeout_s`` wins over the ``with: {timeout_s}`` one, which wins over ``default``."""
    if ctx.timeout_s:
        return float(ctx.timeout_s)
    value = ctx.params.get("timeout_s")
    return float(value) if isinstance(value, int | float) and value > 0 else default
