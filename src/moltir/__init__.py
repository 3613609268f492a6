"""moltir: incident response for self-hosted OpenClaw gateways."""

__version__ = "0.1.0"
