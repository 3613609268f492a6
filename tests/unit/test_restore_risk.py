"""``restore --accept-risk``: which check ids a restore would bring back (moltir.commands.restore_risk), and
the capability row that names an open DM's check, pinned against the installed packages' dist."""

from __future__ import annotations

import os

import pytest
from tests.harness.releases import CYCLE_IDS, cache_dir

from moltir.commands import restore_risk as rr
from moltir.openclaw import capabilities as capmod

EXPOSURE = "security.exposure.open_groups_with_elevated"


def _entry(path: str, old: object) -> dict[str, object]:
    return {"path": path.split("."), "old": {"value": old}, "written": "disabled"}


DATA = {"dm_policy": {"paths": [
    _entry("channels.telegram.accounts.alerts.dmPolicy", "open"),
    _entry("channels.discord.dm.policy", "open"),
    _entry("channels.telegram.dmPolicy", "pairing"),
    _entry("channels.telegram.groupPolicy", "open"),
    {"path": ["channels", "slack", "dmPolicy"], "old": "__absent__", "written": "disabled"},
]}}


def test_channel_release_names_each_channels_dm_open() -> None:
    found = rr.risks(DATA, dm_check="channel", reopen_open="open")
    assert [(r.check_id, r.path) for r in found] == [
        ("channels.telegram.dm.open", "channels.telegram.accounts.alerts.dmPolicy"),
        ("channels.discord.dm.open", "channels.discord.dm.policy"),
        (EXPOSURE, "channels.telegram.groupPolicy")]
    assert rr.needed(found) == sorted(["channels.discord.dm.open", "channels.telegram.dm.open", EXPOSURE])


def test_exposure_release_names_one_exposure_id() -> None:
    found = rr.risks(DATA, dm_check="exposure", reopen_open="open")
    assert {r.check_id for r in found} == {EXPOSURE} and len(found) == 3
    assert rr.unaccepted(found, []) == [EXPOSURE] and rr.unaccepted(found, [EXPOSURE]) == []


def test_reopen_open_other_than_open_is_no_dm_risk_but_groups_stay() -> None:
    found = rr.risks(DATA, dm_check="channel", reopen_open="pairing")
    assert [r.path for r in found] == ["channels.telegram.groupPolicy"]


def test_hardened_makes_the_settings_harden_closes_moot() -> None:
    found = rr.risks(DATA, dm_check="channel", reopen_open="open", hardened=("dm",))
    assert rr.needed(found) == [EXPOSURE]  # the groups are not closed by this (copied) harden runbook
    assert rr.needed(rr.risks(DATA, dm_check="channel", reopen_open="open", hardened=("dm", "groups"))) == []
    lines = rr.preview_lines(found, [EXPOSURE])
    assert "risk channels.telegram.dm.open: channels.telegram.accounts.alerts.dmPolicy back to 'open': moot" \
        in lines[0]
    assert lines[2].endswith("accepted (--accept-risk)")


def test_nothing_to_bring_back() -> None:
    assert rr.risks({}, dm_check="channel", reopen_open="open") == []
    assert rr.risks(DATA, dm_check="channel", reopen_open="open", restores_dms=False) == []


def test_refusal_is_one_line_naming_ids_paths_and_the_flag() -> None:
    found = rr.risks(DATA, dm_check="channel", reopen_open="open")
    err = rr.refusal(found, ["channels.telegram.dm.open"], "C1")
    assert err.exit_code == 2 and "\n" not in err.one_line()
    assert "channels.telegram.dm.open (channels.telegram.accounts.alerts.dmPolicy back to 'open')" in err.message
    assert "--accept-risk channels.telegram.dm.open" in err.hint
    assert rr.unused(found, ["channels.slack.dm.open", EXPOSURE]) == ["channels.slack.dm.open"]


@pytest.mark.parametrize("version", CYCLE_IDS)
def test_the_table_row_matches_the_packages_audit_code(version: str) -> None:
    """Up to 2026.5.28 the exposure matrix lists only groupPolicy and an open DM is the channel adapter's
    ``channels.<id>.dm.open``; later releases list DM policies in ``security.exposure.*``."""
    dist = cache_dir() / f"openclaw-{version}" / "node_modules" / "openclaw" / "dist"
    if not dist.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{dist} missing (make deps installs the pinned releases)")
        pytest.skip(f"{dist} missing")
    texts = [p.read_text(errors="replace") for p in sorted(dist.rglob("audit*")) if p.suffix in (".js", ".mjs")]
    lists_dms = any('Found inbound policy="open"' in t for t in texts)
    groups_only = any('Found groupPolicy="open"' in t for t in texts)
    assert lists_dms != groups_only, f"{version}: neither or both exposure texts found"
    caps = capmod.for_install("openclaw", version, "test", package_root=None, state_dir=None)
    assert caps.audit_open_dm_check == ("exposure" if lists_dms else "channel")
    if not lists_dms:
        assert any("dm.open`" in t for t in texts), "the channel check is gone too"
