"""Test harness: real OpenClaw releases, fake Telegram/model servers, a private Secret Service.

Importable as ``tests.harness`` with the repository root on ``sys.path`` (the integration
conftest puts it there; ``python -m tests.harness.demo`` run from the root gets it for free).
"""
