"""Subcommand groups, one module each, loaded lazily by ``moltir.cli``."""
