"""The capability table is pinned to facts read from the real packages.

``tests/unit/fixtures/releases/<version>.json`` were extracted by ``scripts/release_facts.py`` from
the npm tarballs of 21 releases (how: the README there). For every release, the table's answer from
the release number alone must equal what its package shows: a wrong row fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from moltir.openclaw import capabilities as capmod

FIXTURES = Path(__file__).parent / "fixtures" / "releases"
RELEASES = sorted((p.stem for p in FIXTURES.glob("*.json")), key=lambda v: [int(x) for x in v.split(".")])

# question -> (fact name, how the fact's value reads as the question's answer)
PINS: dict[str, tuple[str, Any]] = {
    "openclaw_home": ("openclaw_home_env", bool),
    "discord_slack_dm_key": ("discord_slack_top_dm_policy", lambda v: "dmPolicy" if v else "dm.policy"),
    "secret_refs": ("secret_refs", bool),
    "external_restart": ("external_restart_default_allowed", bool),
    "readyz": ("readyz", bool),
    "telegram_direct_dm": ("telegram_direct_dm_policy", bool),
    "gateway_token_secretref": ("gateway_token_secretref", bool),
    "legacy_env": ("clawdbot_env", bool),
    "legacy_state_dirs": ("legacy_state_dirs", tuple),
    "security_audit_token_flag": ("security_audit_token_flag", bool),
    "respawn_wrapper": ("respawn_wrapper", bool),
    "gateway_stop_force": ("gateway_stop_force", bool),
    "audit_ledger": ("audit_ledger", bool),
    "state_store": ("transcripts_store", lambda v: "sqlite" if v == "sqlite" else "files"),
    "exec_approvals": ("exec_approvals_store",
                       lambda v: "sqlite" if "sqlite" in v else "state-dir" if v.startswith("<state>") else "home"),
    "lock_dir": ("lock_in_state_dir", lambda v: "state-dir" if v else "tmpdir"),
    "googlechat_dm_key": ("googlechat_dm_key", str),
    "profile_port": ("profile_port_rule", str),
    "telegram_api_root": ("telegram_api_root", bool),
    "restart_signal": ("restart_signal", str),
    "config_validate": ("config_validate_cli", lambda v: "config validate" if v else "config get"),
    # not in the extracts (scripts/release_facts.py has no signature for it yet): its rows are pinned by
    # tests/unit/test_harden.py, and by the real 2026.1.29 (accepts) and 2026.9.6 (rejects) in
    # tests/integration/test_harden_real.py
    "control_ui_insecure_auth": ("control_ui_insecure_auth", bool),
    # not in the extracts either: pinned by tests/unit/test_rotate_plan.py against the docs of the packages
    # installed for the real-gateway tests (2026.9.6 lists channels.telegram.botToken, 2026.1.29 has no
    # SecretRefs); 2026.3.1 vs 2026.3.2 read from docs/gateway/secrets.md and the surface doc
    "telegram_token_secretref": ("telegram_token_secretref", bool),
    # not in the extracts: pinned by tests/unit/test_harden_approvals.py against the sandboxing docs of the
    # packages installed for the real-gateway tests (podman backend from 2026.8.2)
    "sandbox_local_engines": ("sandbox_local_engines", tuple),
    # likewise (tests/unit/test_rotate_chat.py reads the installed packages' surface doc)
    "chat_token_secretref": ("chat_token_secretref", bool),
    # likewise (tests/unit/test_rotate_matrix.py reads the installed packages' surface doc; 2026.3.2 lists
    # channels.matrix.accessToken, read in that package)
    "matrix_token_secretref": ("matrix_token_secretref", bool),
    # not in the extracts either: pinned by tests/unit/test_credentials_masks.py against the dist of the
    # installed packages (redactTranscriptMessage); 2026.4.1 (none) vs 2026.4.29 read from their dist
    "transcript_masks": ("transcript_masks", bool),
    # not in the extracts: pinned by tests/unit/test_restore_risk.py against the dist of the packages installed
    # for the real-gateway tests, and by the real audits of 2026.1.29 and 2026.9.6 (tests/unit/fixtures/audit/)
    "audit_open_dm_check": ("audit_open_dm_check", str),
}


def _facts(version: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"{version}.json").read_text())
    assert data["version"] == version
    return {k: v["value"] for k, v in data["facts"].items()}


def test_every_question_is_pinned() -> None:
    assert set(PINS) == {q.name for q in capmod.QUESTIONS}
    assert len(RELEASES) >= 21 and RELEASES[0] == "2026.1.29" and RELEASES[-1] == "2026.9.6"


@pytest.mark.parametrize("version", RELEASES)
def test_table_answers_what_the_package_shows(version: str) -> None:
    facts = _facts(version)
    caps = capmod.for_install("openclaw", version, "fixture", package_root=None, state_dir=None)
    wrong = {}
    for question, (fact, read) in PINS.items():
        if facts.get(fact) is None:
            continue  # the package does not say (e.g. no docs/ shipped)
        want = read(facts[fact])
        got = caps.value(question)
        if (tuple(got) if isinstance(got, list | tuple) else got) != want:
            wrong[question] = {"table": got, "package": want, "fact": fact}
    assert not wrong, f"{version}: {wrong}"


def test_a_release_between_the_fixtures_gets_the_earlier_rows() -> None:
    caps = capmod.for_install("openclaw", "2026.9.4", "t", package_root=None, state_dir=None)
    assert caps.restart_signal({}) == "SIGUSR1"  # 2026.9.1 .. 9.5 still restart on SIGUSR1
    caps = capmod.for_install("openclaw", "2026.3.6", "t", package_root=None, state_dir=None)
    assert caps.gateway_token_secretref is False and caps.secret_refs is True
    assert capmod.for_install("openclaw", "2026.2.6-3", "t", package_root=None,
                              state_dir=None).openclaw_home is False  # a re-release of 2.6 is before 2.9


def test_probes_of_a_real_package_layout_win_over_the_table(tmp_path: Path) -> None:
    root = tmp_path / "openclaw"
    (root / "dist").mkdir(parents=True)
    (root / "docs" / "cli").mkdir(parents=True)
    (root / "dist" / "run-abc.mjs").write_text('process.on("SIGUSR2", () => restart());')
    caps = capmod.for_install("openclaw", "2026.9.5", "t", package_root=root, state_dir=None)
    assert caps.restart_signal({}) == "SIGUSR2"
    assert "run-abc.mjs" in caps.answer("restart_signal").source
    assert any("restart_signal" in w and "SIGUSR1" in w for w in caps.warnings)
