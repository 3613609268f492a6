"""dm_policy.set / dm_policy.restore on real files (no gateway): which paths, exact restore, conflicts."""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from pathlib import Path
from typing import Any

import json5
import pytest

from moltir.actions.base import Action, RunOptions, StepContext
from moltir.actions.dm_policy import CURRENT, LEGACY, RestoreDmPolicy, SetDmPolicy, table_for
from moltir.engine.case import Case
from moltir.engine.journal import Journal
from moltir.errors import EXIT_USAGE, EXIT_VERIFY, MoltirError
from moltir.openclaw import Install, discover
from moltir.openclaw import capabilities as capmod

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the harness's configs are plain text builders, usable from unit tests
    sys.path.insert(0, str(REPO))
from tests.harness.configs import ConfigParams, config_text  # noqa: E402
from tests.unit.releasefix import pin  # noqa: E402

PARAMS = ConfigParams(port=18789, token="tok-secret-aaaaaaaaaaaaaaaaaaaaaaaa", log_file="/tmp/x.log",
                      telegram_url="http://127.0.0.1:9", llm_base_url="http://127.0.0.1:8/v1")


class Env:
    def __init__(self, tmp_path: Path, text: str, release: str, name: str = "openclaw.json",
                 product: str = "openclaw") -> None:
        state = tmp_path / ("state-" + release)
        state.mkdir()
        self.config = state / name
        self.config.write_text(text, encoding="utf-8")
        self.config.chmod(0o600)
        self.original = text
        install = discover(env={"HOME": str(tmp_path), "OPENCLAW_STATE_DIR": str(state),
                                "OPENCLAW_CONFIG_PATH": str(self.config), "PATH": "/nonexistent"})
        self.install: Install = pin(install, release, product)
        self.case = Case.create(tmp_path / f"case-{release}", kind="contain", install_info={}, reason="t")

    def ctx(self, action: Action, *, force: bool = False, readonly: bool = False, reopen: str = "open",
            **params: Any) -> StepContext:
        merged = {k: p.default for k, p in action.params.items()}
        merged.update(params)
        case = dataclasses.replace(self.case, readonly=True) if readonly else self.case
        journal = Journal(None) if readonly else Journal(self.case.journal_path)
        return StepContext(self.install, case, journal, merged, "step", "contain", None,
                           RunOptions(force=force, dry_run=readonly, reopen_open=reopen), {})

    def run(self, action: Action, **kw: Any) -> Any:
        ctx = self.ctx(action, **kw)
        result = action.apply(ctx)
        action.verify(self.ctx(action, **kw), result)
        return result

    def text(self) -> str:
        return self.config.read_text(encoding="utf-8")

    def data(self) -> dict[str, Any]:
        data = json5.loads(self.text())
        assert isinstance(data, dict)
        return data


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def comments(text: str) -> list[str]:
    return [line.split("//", 1)[1] for line in text.splitlines() if "//" in line and "http" not in line]


# ---- the harness configs, both releases --------------------------------------------------------

def test_current_release_every_dm_path_disabled_only_policy_lines_changed(tmp_path: Path) -> None:
    env = Env(tmp_path, config_text("2026.9.6", PARAMS), "2026.9.6")
    result = env.run(SetDmPolicy())
    assert result.status == "done"
    data = env.data()
    ch = data["channels"]
    assert ch["telegram"]["dmPolicy"] == "disabled"
    assert ch["telegram"]["direct"]["555000111"]["dmPolicy"] == "disabled"
    assert {a["dmPolicy"] for a in ch["telegram"]["accounts"].values()} == {"disabled"}
    assert ch["whatsapp"]["dmPolicy"] == ch["whatsapp"]["accounts"]["default"]["dmPolicy"] == "disabled"
    assert ch["discord"]["dmPolicy"] == ch["discord"]["accounts"]["community"]["dmPolicy"] == "disabled"
    assert ch["discord"]["dm"] == {"enabled": True}  # no legacy key invented on 2026.9.x
    assert ch["slack"]["dmPolicy"] == ch["msteams"]["dmPolicy"] == "disabled"
    assert ch["matrix"]["dm"]["policy"] == "disabled" and "dmPolicy" not in ch["matrix"]
    assert ch["telegram"]["groupPolicy"] == "allowlist"  # groups untouched without `groups`
    lines = changed_lines(env.original, env.text())
    assert lines and all("dmPolicy" in ln or "policy:" in ln for ln in lines)
    assert comments(env.text()) == comments(env.original)
    assert env.run(SetDmPolicy()).status == "already"
    restored = env.run(RestoreDmPolicy())
    assert restored.status == "done"
    assert env.text() == env.original


def test_early_release_uses_nested_dm_policy_and_inserts_dm_objects(tmp_path: Path) -> None:
    text = config_text("2026.1.29", PARAMS).replace('      dm: { policy: "pairing" },\n    },\n\n    matrix',
                                                    '    },\n\n    matrix')
    env = Env(tmp_path, text, "2026.1.29")
    assert "dm" not in env.data()["channels"]["slack"]
    env.run(SetDmPolicy())
    ch = env.data()["channels"]
    assert ch["discord"]["dm"]["policy"] == "disabled" and "dmPolicy" not in ch["discord"]
    assert ch["discord"]["accounts"]["community"]["dm"] == {"policy": "disabled"}
    assert ch["slack"]["dm"] == {"policy": "disabled"} and "dmPolicy" not in ch["slack"]
    assert "direct" not in ch["telegram"]
    assert "      appToken: \"xapp-fake\",\n      dm: { policy: \"disabled\" },\n    }," in env.text()
    record = env.case.restore_section("dm_policy")
    slack = next(e for e in record["paths"] if e["path"] == ["channels", "slack", "dm", "policy"])
    assert slack["old"] == "absent" and slack["created"] == ["channels", "slack", "dm"]
    env.run(RestoreDmPolicy())
    assert env.text() == text


def test_clawdbot_layout(tmp_path: Path) -> None:
    text = """// clawdbot 2026.1.24
{
  gateway: { mode: "local", auth: { token: "plain-token-aaaaaaaaaaaaaaaa" } },
  channels: {
    telegram: { botToken: "1:AA", dmPolicy: "open", allowFrom: ["*"] },
    discord: { token: "d", dm: { policy: "open", allowFrom: ["*"] } },
    googlechat: { accounts: { main: { dm: { enabled: true } } } },
  },
}
"""
    env = Env(tmp_path, text, "2026.1.24", name="clawdbot.json", product="clawdbot")
    assert table_for(env.install.caps)["discord"].dm == ("dm", "policy")
    env.run(SetDmPolicy())
    ch = env.data()["channels"]
    assert ch["telegram"]["dmPolicy"] == "disabled"
    assert ch["discord"]["dm"]["policy"] == "disabled"
    assert ch["googlechat"]["dm"] == {"policy": "disabled"}
    assert ch["googlechat"]["accounts"]["main"]["dm"] == {"enabled": True, "policy": "disabled"}
    env.run(RestoreDmPolicy())
    assert env.text() == text


# ---- which paths ---------------------------------------------------------------------------------

BASIC = """{
  gateway: { mode: "local" },
  channels: {
    defaults: { groupPolicy: "open" },
    telegram: {
      groupPolicy: "open",
      groups: { "-100": { groupPolicy: "open", topics: { "7": { groupPolicy: "open" } } } },
      direct: { "42": { dmPolicy: "open", topics: { "1": { groupPolicy: "open" } } }, "43": { allowFrom: [] } },
      accounts: {
        a: { direct: { "44": { dmPolicy: "pairing" } } },
        off: { enabled: false },
        offset: { enabled: false, dmPolicy: "open" },
      },
    },
    signal: { enabled: false },
    imessage: { enabled: false, dmPolicy: "open" },
    buzz: { accounts: { x: {} } },
    tlon: { enabled: false },
    customchat: { dmPolicy: "open", accounts: { y: { dmPolicy: "open" }, z: {} } },
    weird: { enabled: true },
  },
}
"""


def test_paths_inserted_only_where_enabled_and_overrides_rewritten(tmp_path: Path) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    plan = SetDmPolicy().plan(env.ctx(SetDmPolicy(), readonly=True))
    targets = {c.target for c in plan.changes}
    assert targets == {
        "channels.telegram.dmPolicy", "channels.telegram.direct.42.dmPolicy",
        "channels.telegram.accounts.a.dmPolicy", "channels.telegram.accounts.a.direct.44.dmPolicy",
        "channels.telegram.accounts.offset.dmPolicy",  # exists: rewritten even though disabled
        "channels.imessage.dmPolicy",  # exists on a disabled channel: rewritten
        "channels.customchat.dmPolicy", "channels.customchat.accounts.y.dmPolicy",  # no row: existing keys
    }
    assert "channels.telegram.accounts.off.dmPolicy" not in targets  # disabled: nothing inserted
    assert "channels.signal.dmPolicy" not in targets
    assert all("defaults" not in t for t in targets)
    assert any("channels.buzz has no DM policy setting" in w for w in plan.warnings)
    assert any("channels.weird has no DM policy setting" in w for w in plan.warnings)
    assert not any("tlon" in w for w in plan.warnings)  # disabled: nothing to report
    assert plan.diff and "(now)" in plan.diff
    assert env.text() == BASIC and env.case.restore_section("dm_policy") is None  # plan: no side effects


def test_no_dm_key_disable_channel_and_groups(tmp_path: Path) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    env.run(SetDmPolicy(), no_dm_key="disable-channel", groups="allowlist")
    ch = env.data()["channels"]
    assert ch["buzz"]["enabled"] is False and ch["buzz"]["accounts"]["x"]["enabled"] is False
    assert ch["weird"]["enabled"] is False
    assert ch["tlon"] == {"enabled": False}
    assert ch["defaults"]["groupPolicy"] == "allowlist"
    tg = ch["telegram"]
    assert tg["groupPolicy"] == tg["groups"]["-100"]["groupPolicy"] == "allowlist"
    assert tg["groups"]["-100"]["topics"]["7"]["groupPolicy"] == "allowlist"
    assert tg["direct"]["42"]["topics"]["1"]["groupPolicy"] == "allowlist"
    assert ch["buzz"]["groupPolicy"] == "allowlist"
    env.run(RestoreDmPolicy())
    assert env.text() == BASIC


def test_policy_not_supported_by_a_channel_is_reported(tmp_path: Path) -> None:
    text = '{ channels: { "synology-chat": { dmPolicy: "open" }, telegram: { dmPolicy: "open" } } }'
    env = Env(tmp_path, text, "2026.9.6")
    result = env.run(SetDmPolicy(), policy="pairing")
    assert env.data()["channels"]["synology-chat"]["dmPolicy"] == "open"
    assert env.data()["channels"]["telegram"]["dmPolicy"] == "pairing"
    assert any("synology-chat does not accept dmPolicy 'pairing'" in w for w in result.warnings)


def test_tables_cover_the_documented_channels() -> None:
    assert CURRENT["matrix"].dm == ("dm", "policy")
    assert CURRENT["discord"].dm == ("dmPolicy",) and ("dm", "policy") in CURRENT["discord"].legacy_dm
    assert LEGACY["discord"].dm == LEGACY["slack"].dm == LEGACY["googlechat"].dm == ("dm", "policy")
    assert CURRENT["telegram"].direct_dm and not LEGACY["telegram"].direct_dm
    assert not CURRENT["msteams"].accounts and CURRENT["msteams"].account_dm is None



def _caps(release: str | None) -> capmod.Capabilities:
    return capmod.for_install("openclaw", release, "test", package_root=None, state_dir=None)


@pytest.mark.parametrize(("release", "discord", "googlechat", "direct"), [
    ("2026.1.29", ("dm", "policy"), ("dm", "policy"), False),
    ("2026.2.12", ("dm", "policy"), ("dm", "policy"), False),
    ("2026.2.17", ("dmPolicy",), ("dm", "policy"), False),   # top-level dmPolicy, read before dm.policy
    ("2026.3.1", ("dmPolicy",), ("dm", "policy"), True),     # telegram direct.<chatId>.dmPolicy
    ("2026.7.35", ("dmPolicy",), ("dm", "policy"), True),    # Google Chat's strict schema: dm.policy only
    ("2026.8.1", ("dmPolicy",), ("dmPolicy",), True),
    ("2026.9.6", ("dmPolicy",), ("dmPolicy",), True),
])
def test_table_follows_the_release(release: str, discord: tuple[str, ...], googlechat: tuple[str, ...],
                                   direct: bool) -> None:
    table = table_for(_caps(release))
    assert table["discord"].dm == table["slack"].dm == discord
    if discord == ("dmPolicy",):
        assert ("dm", "policy") in table["discord"].legacy_dm  # the other reading is rewritten too
    assert table["googlechat"].dm == googlechat
    assert table["telegram"].direct_dm is direct


def test_unknown_release_inserts_no_google_chat_key_but_nested_discord() -> None:
    table = table_for(_caps(None))
    assert "googlechat" not in table  # existing keys rewritten, none inserted: either form may be invalid
    assert table["discord"].dm == ("dm", "policy")  # valid (and read) on every release


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "words"), [
    ('{\n  channels: {\n    telegram: "on",\n  },\n}', ":3:15: channels.telegram is a string, expected an object"),
    ('{\n  channels: {\n    telegram: { accounts: [] },\n  },\n}',
     ":3:27: channels.telegram.accounts is a list, expected an object"),
    ('{\n  channels: {\n    slack: { dm: true },\n  },\n}',
     ":3:18: channels.slack.dm is a boolean, expected an object"),
    ('{\n  channels: [],\n}', ":2:13: channels is a list, expected an object"),
])
def test_unexpected_value_types_are_refused(tmp_path: Path, text: str, words: str) -> None:
    env = Env(tmp_path, text, "2026.1.29")
    with pytest.raises(MoltirError) as err:
        SetDmPolicy().apply(env.ctx(SetDmPolicy()))
    assert err.value.exit_code == EXIT_USAGE
    assert words in err.value.one_line()
    assert env.text() == text and env.case.restore_section("dm_policy") is None


def test_read_only_config_refused_before_any_record(tmp_path: Path) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    env.install = dataclasses.replace(env.install, env={**env.install.env, "OPENCLAW_NIX_MODE": "1"})
    plan = SetDmPolicy().plan(env.ctx(SetDmPolicy(), readonly=True))
    assert any("read-only (OPENCLAW_NIX_MODE=1)" in w for w in plan.warnings)
    with pytest.raises(MoltirError) as err:
        SetDmPolicy().apply(env.ctx(SetDmPolicy()))
    assert err.value.exit_code == 3
    assert env.text() == BASIC
    assert not (env.case.dir / "preimage").exists()


# ---- restore -------------------------------------------------------------------------------------

def test_restore_keeps_unrelated_edits_and_reports_conflicts(tmp_path: Path) -> None:
    env = Env(tmp_path, config_text("2026.9.6", PARAMS), "2026.9.6")
    env.run(SetDmPolicy())
    # during the incident: someone re-opens one account and edits an unrelated key
    edited = env.text().replace('          dmPolicy: "disabled",         // the risky one',
                                '          dmPolicy: "allowlist",         // the risky one')
    edited = edited.replace('bind: "loopback"', 'bind: "loopback" /* checked */')
    env.config.write_text(edited)
    result = env.run(RestoreDmPolicy())
    assert result.status == "done"
    assert result.warnings and "channels.telegram.accounts.alerts.dmPolicy is now 'allowlist'" in result.warnings[0]
    data = env.data()
    assert data["channels"]["telegram"]["accounts"]["alerts"]["dmPolicy"] == "allowlist"  # left as it is
    assert data["channels"]["telegram"]["accounts"]["ops"]["dmPolicy"] == "allowlist"  # restored
    assert data["channels"]["discord"]["dmPolicy"] == "open"
    assert "/* checked */" in env.text()
    # with --force the recorded value goes back too
    forced = env.run(RestoreDmPolicy(), force=True)
    assert forced.status == "forced"
    # the summary names what --force overwrote (an operator's hand edit is gone: say so)
    assert "--force overwrote 1 edited during the incident: channels.telegram.accounts.alerts.dmPolicy" \
        in forced.summary
    assert env.text() == env.original.replace('bind: "loopback"', 'bind: "loopback" /* checked */')


def test_restore_of_an_inserted_key_changed_meanwhile_is_a_conflict(tmp_path: Path) -> None:
    text = '{\n  channels: {\n    slack: {\n      enabled: true,\n    },\n  },\n}\n'
    env = Env(tmp_path, text, "2026.9.6")
    env.run(SetDmPolicy())
    env.config.write_text(env.text().replace('"disabled"', '"allowlist"'))
    result = env.run(RestoreDmPolicy())
    assert result.status == "skipped" and "left as it is" in result.warnings[0]
    assert env.data()["channels"]["slack"]["dmPolicy"] == "allowlist"
    env.run(RestoreDmPolicy(), force=True)
    assert env.text() == text


def test_restore_without_a_record_and_twice(tmp_path: Path) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    assert env.run(RestoreDmPolicy()).status == "skipped"
    env.run(SetDmPolicy())
    assert env.run(RestoreDmPolicy()).status == "done"
    assert env.run(RestoreDmPolicy()).status == "already"
    assert env.text() == BASIC


def test_restore_record_is_written_before_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    import moltir.openclaw.configfile as mod

    def boom(*a: object, **kw: object) -> None:
        raise MoltirError("disk full while writing")

    monkeypatch.setattr(mod, "atomic_write", boom)
    with pytest.raises(MoltirError):
        SetDmPolicy().apply(env.ctx(SetDmPolicy()))
    record = env.case.restore_section("dm_policy")
    assert record is not None and env.text() == BASIC
    assert (env.case.dir / "preimage" / "openclaw.json").read_text() == BASIC
    entry = next(e for e in record["paths"] if e["path"] == ["channels", "telegram", "dmPolicy"])
    assert entry == {"path": ["channels", "telegram", "dmPolicy"], "file": str(env.config), "old": "absent",
                     "created": ["channels", "telegram", "dmPolicy"], "created_value": "disabled",
                     "written": "disabled"}
    imessage = next(e for e in record["paths"] if e["path"] == ["channels", "imessage", "dmPolicy"])
    assert imessage["old"] == {"value": "open"}
    monkeypatch.undo()
    # the resumed run keeps the first record and finishes the job
    env.run(SetDmPolicy())
    env.run(RestoreDmPolicy())
    assert env.text() == BASIC


def test_resumed_run_adds_paths_that_appeared_meanwhile(tmp_path: Path) -> None:
    text = '{\n  channels: {\n    telegram: { dmPolicy: "open" },\n  },\n}\n'
    env = Env(tmp_path, text, "2026.9.6")
    env.run(SetDmPolicy())
    # a new account appears (and the old value of the first path must survive in the record)
    env.config.write_text(env.text().replace('dmPolicy: "disabled" }', 'dmPolicy: "disabled", accounts: { n: { '
                                                                       'dmPolicy: "open" } } }'))
    env.run(SetDmPolicy())
    record = env.case.restore_section("dm_policy")
    assert [e["path"][-2:] for e in record["paths"]] == [["telegram", "dmPolicy"], ["n", "dmPolicy"]]
    env.run(RestoreDmPolicy())
    assert env.data()["channels"]["telegram"] == {"dmPolicy": "open", "accounts": {"n": {"dmPolicy": "open"}}}


def test_verify_fails_when_the_effect_does_not_hold(tmp_path: Path) -> None:
    env = Env(tmp_path, BASIC, "2026.9.6")
    result = SetDmPolicy().apply(env.ctx(SetDmPolicy()))
    env.config.write_text(env.text().replace('dmPolicy: "disabled", topics', 'dmPolicy: "open", topics'))
    with pytest.raises(MoltirError) as err:
        SetDmPolicy().verify(env.ctx(SetDmPolicy()), result)
    assert err.value.exit_code == EXIT_VERIFY
    assert "channels.telegram.direct.42.dmPolicy" in err.value.message


def test_no_secret_in_plan_result_or_journal(tmp_path: Path) -> None:
    env = Env(tmp_path, config_text("2026.9.6", PARAMS), "2026.9.6")
    plan = SetDmPolicy().plan(env.ctx(SetDmPolicy(), readonly=True))
    result = env.run(SetDmPolicy())
    blob = plan.diff + json.dumps([dataclasses.asdict(c) for c in plan.changes]) + json.dumps(result.details) \
        + env.case.journal_path.read_text() + (env.case.dir / "restore.json").read_text()
    for secret in (PARAMS.token, "AAFakeDefault", "AAFakeOps", "xoxb-fake", "syt_fake", "discord-fake-token"):
        assert secret not in blob


def test_restore_can_put_open_dms_back_as_pairing_and_says_so(tmp_path: Path) -> None:
    from moltir.commands.restore_checks import describe_restore

    text = ('{ channels: { telegram: { dmPolicy: "open", groupPolicy: "open", '
            'accounts: { ops: { dmPolicy: "pairing" } } } } }')
    env = Env(tmp_path, text, "2026.9.6")
    env.run(SetDmPolicy())
    preview = "\n".join(describe_restore(env.case))
    assert "WARNING: 1 DM path(s) go back to 'open'" in preview and "--reopen-open=pairing" in preview
    safer = "\n".join(describe_restore(env.case, reopen_open="pairing"))
    assert "WARNING" not in safer and "'pairing' (was 'open'" in safer
    env.run(RestoreDmPolicy(), reopen="pairing")
    ch = env.data()["channels"]["telegram"]
    assert ch["dmPolicy"] == "pairing" and ch["accounts"]["ops"]["dmPolicy"] == "pairing"
