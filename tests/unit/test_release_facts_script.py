"""scripts/release_facts.py on tiny synthetic packages (no network, no real OpenClaw tarball)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "release_facts.py"
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "releases"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _run(package: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(package)], capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def _values(report: dict[str, Any]) -> dict[str, Any]:
    return {name: f["value"] for name, f in report["facts"].items()}


@pytest.fixture
def new_style(tmp_path: Path) -> Path:
    """A package shaped like a late release: SIGUSR2, state-dir lock, SecretRef token, SQLite stores."""
    pkg = tmp_path / "new" / "package"
    _write(pkg, "package.json", json.dumps({"name": "openclaw", "version": "2099.1.2"}))
    _write(pkg, "dist/run-AbC123.mjs", "\n".join([
        "async function runGatewayLoop(params) {",
        '\tif (process.title === "openclaw") process.title = "openclaw-gateway";',
        '\tprocess.on("SIGTERM", onSigterm);',
        '\tprocess.on("SIGUSR2", onRestartSignal);',
        "}",
        'setGatewayRestartPolicy({ allowExternal: isRestartEnabled(cfgAtStart) });',
    ]))
    _write(pkg, "dist/flags-x1.mjs", "\n".join([
        "function isRestartEnabled(config) {",
        '\treturn getOwnCommandFlagValue(config, "restart") !== false;',
        "}",
    ]))
    _write(pkg, "dist/paths-Zz9.mjs", "\n".join([
        'const LEGACY_STATE_DIRNAMES = [".clawdbot"];',
        "const DEFAULT_GATEWAY_PORT = 18789;",
        "function resolveGatewayLockDir(stateDir = resolveStateDir(), uid = process.getuid()) {",
        '\treturn path.join(stateDir, "tmp", `openclaw-${uid}`);',
        "}",
        "function resolveGatewayPort(cfg, env = process.env) {",
        "\tlet hash = 2166136261;",
        "\treturn 2e4 + hash % 4e4;",
        "}",
    ]))
    _write(pkg, "dist/zod-schema-Q.mjs", "\n".join([
        "const SecretRefSchema = discriminatedUnion(\"source\", [",
        '\tobject({ source: literal("env") }),',
        '\tobject({ source: literal("exec") })',
        "]);",
        "\t\tauth: object({",
        "\t\t\tmode: union([",
        '\t\t\t\tliteral("none"),',
        '\t\t\t\tliteral("token"),',
        '\t\t\t\tliteral("password")',
        "\t\t\t]).optional(),",
        "\t\t\ttoken: SecretInputSchema.optional().register(sensitive),",
        "\t\t\tpassword: SecretInputSchema.optional().register(sensitive),",
        "\t\t\tallowTailscale: boolean().optional()",
        "\t\t}).strict().optional(),",
        'message: "channels.googlechat.dmPolicy=\\"open\\" requires channels.googlechat.allowFrom to include \\"*\\""',
    ]))
    _write(pkg, "dist/store-k.mjs", 'db.selectFrom("transcript_events").select("seq");\n')
    manifest = json.dumps({"id": "telegram", "channels": ["telegram"]})
    _write(pkg, "dist/extensions/telegram/openclaw.plugin.json", manifest)
    _write(pkg, "docs/cli/secrets.md", "# secrets\n")
    return pkg


@pytest.fixture
def old_style(tmp_path: Path) -> Path:
    """A package shaped like an early release: SIGUSR1 gated by commands.restart, $TMPDIR lock, JSONL."""
    pkg = tmp_path / "old" / "package"
    _write(pkg, "package.json", json.dumps({"name": "openclaw", "version": "2001.1.1"}))
    _write(pkg, "dist/gateway-cli-Old.js", "\n".join([
        'process.on("SIGUSR1", onSigusr1);',
        "setGatewaySigusr1RestartPolicy({ allowExternal: cfgAtStart.commands?.restart === true });",
        'const LEGACY_STATE_DIRNAMES = [".clawdbot", ".moltbot"];',
        "const override = env.OPENCLAW_STATE_DIR?.trim() || env.CLAWDBOT_STATE_DIR?.trim();",
        "function resolveGatewayLockDir(tmpdir = os.tmpdir) {",
        "\treturn path.join(tmpdir(), `openclaw-${uid}`);",
        "}",
        "const file = `${sessionId}.jsonl`;",
        "message: 'channels.discord.dm.policy=\"open\" requires channels.discord.dm.allowFrom to include \"*\"',",
    ]))
    return pkg


def test_new_style_package_facts_are_detected(new_style: Path) -> None:
    report = _run(new_style)
    assert report["version"] == "2099.1.2"
    v = _values(report)
    assert v["restart_signal"] == "SIGUSR2"
    assert report["facts"]["restart_signal"]["evidence"] == "dist/run-AbC123.mjs:4"
    assert v["external_restart_default_allowed"] is True
    assert v["lock_in_state_dir"] is True
    assert v["profile_port_rule"] == "fnv"
    assert v["gateway_token_secretref"] is True
    assert v["secret_ref_sources"] == ["env", "exec"]
    assert v["googlechat_dm_key"] == "dmPolicy"
    assert v["transcripts_store"] == "sqlite"
    assert v["gateway_process_title_forced"] is True
    assert v["docs_cli_secrets_md"] is True
    assert v["legacy_state_dirs"] == [".clawdbot"]
    assert "telegram" in v["channel_plugins_bundled"]
    assert "telegram" not in v["channel_plugins_external"]
    assert "discord" in v["channel_plugins_external"]


def test_absent_signatures_are_false_not_true(new_style: Path) -> None:
    v = _values(_run(new_style))
    for name in ("readyz", "telegram_api_root", "telegram_direct_dm_policy", "clawdbot_env", "audit_ledger",
                 "respawn_wrapper", "config_validate_cli", "secrets_reload_cli", "openclaw_home_env",
                 "config_readonly_env", "state_lock_file"):
        assert v[name] is False, name
    # no signature at all: null ("not in this package"), not a guess
    assert v["tasks_store"] is None
    assert v["gateway_stop_force"] is None


def test_old_style_package(old_style: Path) -> None:
    v = _values(_run(old_style))
    assert v["restart_signal"] == "SIGUSR1"
    assert v["external_restart_default_allowed"] is False
    assert v["lock_in_state_dir"] is False
    assert v["lock_dir"] == "$TMPDIR/openclaw-<uid>"
    assert v["clawdbot_env"] is True
    assert v["legacy_state_dirs"] == [".clawdbot", ".moltbot"]
    assert v["transcripts_store"] == "jsonl"
    assert v["googlechat_dm_key"] is None
    assert v["dm_policy_keys"] == {"discord": ["dm.policy"]}
    assert v["discord_slack_top_dm_policy"] is None
    assert v["secret_refs"] is False


def test_missing_package_json_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "package.json" in proc.stderr


def test_checked_in_release_fixtures_match_the_script(new_style: Path) -> None:
    """Every fixture names its own version and carries exactly the facts the script emits today."""
    names = set(_run(new_style)["facts"])
    fixtures = sorted(FIXTURES.glob("*.json"))
    assert fixtures, "tests/unit/fixtures/releases/*.json missing"
    for path in fixtures:
        report = json.loads(path.read_text())
        assert report["version"] == path.stem, path.name
        assert set(report["facts"]) == names, f"{path.name}: regenerate with scripts/release_facts.py"
        for name, f in report["facts"].items():
            assert set(f) == {"value", "evidence"}, (path.name, name)
