"""dm_policy.set / dm_policy.restore end to end, against the real releases (2026.9.6, 2026.1.29)
and the file-only clawdbot layout, through ``moltir`` as a user runs it.

What the real releases confirm (found by running them; see also tests/unit/fixtures/audit/):

* 2026.9.6: ``openclaw config validate --json`` says ``valid``. Its CLI ``security audit`` loads no
  channel security adapter, so it never reports ``channels.<id>.dm.*``; an open DM shows up in
  ``security.exposure.*`` details as ``- channels.<id>...dmPolicy``. After the edit no finding
  names a DM path any more. A running gateway hot-reloads the edit and logs every changed path.
* 2026.1.29: no ``config validate``; ``security audit --json`` exits 0 on a valid config (1 on an
  invalid one) and, for the one plugin it loads (telegram), reports the default account:
  ``channels.telegram.dm.disabled`` instead of ``channels.telegram.dm.open``. A running gateway
  evaluates the reload (restart-class for channels whose plugin is not loaded) and comes back.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.harness.clawdbot import ClawdbotHome
from tests.harness.envelope import moltir_json
from tests.harness.gateway import Gateway
from tests.harness.home import OpenClawHome
from tests.harness.net import wait_until
from tests.harness.releases import node_bin_dir, release
from tests.harness.risk import accept_any_open_dm, accept_open_dms

from moltir.actions.dm_policy import CURRENT, LEGACY

SET_RB = '// only the DM policy\n{ name: "contain", steps: [ { id: "disable-dms", action: "dm_policy.set" } ] }\n'
RESTORE_RB = '{ name: "restore", steps: [ { id: "restore-dms", action: "dm_policy.restore" } ] }\n'
POLICY_LINE = re.compile(r"\b(dmPolicy|policy)\s*:")


def _moltir(env: dict[str, str], cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "moltir", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False, cwd=cwd)


def _run_set(env: dict[str, str], root: Path, case: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    rb = root / "dms-only.json5"
    rb.write_text(SET_RB, encoding="utf-8")
    return _moltir(env, root, "contain", "--runbook", str(rb), "--case-dir", str(case), "--yes", *extra)


def _run_restore(env: dict[str, str], root: Path, case: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    rb = root / "restore-dms.json5"
    rb.write_text(RESTORE_RB, encoding="utf-8")
    return _moltir(env, root, "restore", "--runbook", str(rb), "--case-dir", str(case), "--yes", *extra)


def _git_diff(before: Path, after: Path) -> tuple[int, list[str]]:
    """``git diff --no-index`` of two files: (exit code, changed lines without the +/- markers' headers)."""
    proc = subprocess.run(["git", "diff", "--no-index", "--no-color", "--unified=0", str(before), str(after)],
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return proc.returncode, lines


def _comments(text: str) -> list[str]:
    """Every // and /* */ comment, in order (strings are not parsed: the configs keep // out of them
    except in URLs, which are skipped)."""
    found = re.findall(r"//[^\n]*|/\*.*?\*/", text, flags=re.S)
    return [c for c in found if not c.startswith("//127.") and "://" not in c]


def _journal(case: Path, event: str, step: str) -> dict[str, Any]:
    records = [json.loads(ln) for ln in (case / "journal.jsonl").read_text().splitlines() if ln.strip()]
    found = [r for r in records if r.get("event") == event and r.get("step") == step]
    assert found, f"no {event} for {step} in the journal"
    return found[-1]


def _audit(home: OpenClawHome) -> dict[str, Any]:
    proc = home.run_openclaw("security", "audit", "--json", timeout=240)
    assert proc.returncode == 0, f"audit rc {proc.returncode} (1 = invalid config): {proc.stderr[-2000:]}"
    out = proc.stdout
    report = json.loads(out[out.index("{"):])  # 2026.1.29 may print doctor boxes first
    assert isinstance(report, dict)
    return report


def _assert_no_secret(case: Path, secrets: list[str]) -> None:
    for path in case.rglob("*"):
        if path.is_file() and "preimage" not in path.parts:  # pre-images are the config itself, 0600
            text = path.read_text(errors="replace")
            for s in secrets:
                assert s not in text, f"a secret leaked into {path}"


# ---- the real releases ---------------------------------------------------------------------------

def test_set_is_accepted_confirmed_by_the_audit_and_restore_is_byte_exact(openclaw_home: OpenClawHome,
                                                                          tmp_path: Path) -> None:
    home = openclaw_home
    env = {**home.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    pre = tmp_path / "pre.json"
    pre.write_bytes(home.config_path.read_bytes())
    mode = home.config_path.stat().st_mode
    case = tmp_path / "case"

    run = _run_set(env, home.root, case)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Traceback" not in out
    done = _journal(case, "step.done", "disable-dms")
    changed = done["details"]["changed"]
    expected = {"channels.telegram.dmPolicy", "channels.telegram.accounts.ops.dmPolicy",
                "channels.telegram.accounts.alerts.dmPolicy", "channels.whatsapp.dmPolicy",
                "channels.whatsapp.accounts.default.dmPolicy", "channels.msteams.dmPolicy",
                "channels.matrix.dm.policy"}
    if home.release.current:
        expected |= {"channels.telegram.direct.555000111.dmPolicy", "channels.discord.dmPolicy",
                     "channels.discord.accounts.community.dmPolicy", "channels.slack.dmPolicy"}
    else:
        expected |= {"channels.discord.dm.policy", "channels.discord.accounts.community.dm.policy",
                     "channels.slack.dm.policy"}
    assert set(changed) == expected

    # git diff: only policy lines changed, one per path; every comment still there
    post = tmp_path / "post.json"
    post.write_bytes(home.config_path.read_bytes())
    rc, lines = _git_diff(pre, post)
    assert rc == 1 and lines
    assert all(POLICY_LINE.search(ln) for ln in lines), lines
    assert len([ln for ln in lines if ln.startswith("+")]) == len(changed)
    assert _comments(post.read_text()) == _comments(pre.read_text())
    assert home.config_path.stat().st_mode == mode
    assert (case / "preimage" / "openclaw.json").read_bytes() == pre.read_bytes()

    # the real release accepts the edited file
    valid, detail = home.validate_config()
    assert valid, detail
    report = _audit(home)
    ids = [f["checkId"] for f in report["findings"]]
    assert not [i for i in ids if i.endswith(".dm.open")], ids
    dm_path = re.compile(r"channels\.[\w.-]*(dmPolicy|dm\.policy)")
    assert not [f for f in report["findings"] if dm_path.search(f.get("detail", ""))
                and "disabled" not in f["detail"]], report["findings"]
    if not home.release.current:
        disabled = [f for f in report["findings"] if f["checkId"] == "channels.telegram.dm.disabled"]
        assert disabled and '="disabled" ignores inbound DMs' in disabled[0]["detail"]

    # idempotent: planned again, there is nothing left to do
    again = _run_set(env, home.root, case, "--dry-run", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    plan = moltir_json(again.stdout)["plan"][0]
    assert plan["already_done"] is True and plan["diff"] == "" and plan["changes"] == []
    assert home.config_path.read_bytes() == post.read_bytes()

    # restore: byte for byte the pre-image
    back = _run_restore(env, home.root, case, *accept_open_dms(home.release.id))
    assert back.returncode == 0, back.stdout + back.stderr
    assert home.config_path.read_bytes() == pre.read_bytes()
    rc, lines = _git_diff(pre, home.config_path)
    assert rc == 0 and not lines
    _assert_no_secret(case, [home.token, "AAFakeDefault", "AAFakeOps", "AAFakeAlerts"])


def test_a_running_gateway_takes_the_edit(openclaw_home: OpenClawHome, gateway: Gateway, tmp_path: Path) -> None:
    home = openclaw_home
    env = {**home.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    log_before = len(gateway.log_tail(100000).splitlines())
    run = _run_set(env, home.root, tmp_path / "case")
    assert run.returncode == 0, run.stdout + run.stderr

    def new_log() -> list[str]:
        return gateway.log_tail(100000).splitlines()[log_before:]

    evaluated = wait_until(lambda: [ln for ln in new_log() if "evaluating reload" in ln], 60,
                           what="the gateway to notice the config change")
    assert "channels.telegram.accounts.alerts.dmPolicy" in evaluated[0]
    assert "channels.matrix.dm.policy" in evaluated[0]
    assert not [ln for ln in new_log() if "invalid config" in ln or ("skipped" in ln and "reload" in ln)]
    if any("requires gateway restart" in ln for ln in new_log()):  # 2026.1.29: restart-class, in process
        wait_until(lambda: any("listening on" in ln for ln in new_log()), 60, what="the in-process restart")
    wait_until(lambda: gateway.running and gateway.token_status(home.token) == 400, 60,
               what="the gateway answering with the edited config")
    assert not [ln for ln in new_log() if "invalid config" in ln]


def test_bad_config_through_the_cli_changes_nothing(tmp_path: Path) -> None:
    state = tmp_path / "home" / ".openclaw"
    state.mkdir(parents=True)
    config = state / "openclaw.json"
    env = {"HOME": str(tmp_path / "home"), "OPENCLAW_STATE_DIR": str(state), "PATH": "/usr/bin:/bin",
           "MOLTIR_HOME": str(tmp_path / "mh"), "LANG": "C.UTF-8"}
    cases = [
        ('{\n  channels: {\n    telegram: { dmPolicy: "open" }\n    slack: {},\n  },\n}', {},
         2, f"{config}:4:5: expected ',' or '}}'"),
        ('{\n  channels: {\n    telegram: { dmPolicy: "open", dmPolicy: "pairing" },\n  },\n}', {},
         2, f"{config}:3:35: duplicate key 'dmPolicy'"),
        ('{\n  channels: "telegram",\n}', {}, 2, f"{config}:2:13: channels is a string, expected an object"),
        ('{ channels: { telegram: { dmPolicy: "open" } } }', {"OPENCLAW_CONFIG_READONLY": "1"},
         3, "read-only (OPENCLAW_CONFIG_READONLY=1)"),
    ]
    for i, (text, extra, code, words) in enumerate(cases):
        config.write_text(text, encoding="utf-8")
        run = _run_set({**env, **extra}, tmp_path, tmp_path / f"case{i}")
        out = run.stdout + run.stderr
        assert run.returncode == code, out
        assert words in out, out
        assert "Traceback" not in out
        assert config.read_text(encoding="utf-8") == text
    config.unlink()
    run = _run_set(env, tmp_path, tmp_path / "case-missing")
    assert run.returncode == 3 and f"no OpenClaw config at {config}" in run.stdout + run.stderr


# ---- clawdbot (file-only layout) -------------------------------------------------------------------

def test_clawdbot_layout_set_and_restore(clawdbot_home: ClawdbotHome, tmp_path: Path) -> None:
    home = clawdbot_home
    env = {**home.env, "MOLTIR_HOME": str(tmp_path / "moltir-home")}
    pre = tmp_path / "pre.json"
    pre.write_bytes(home.config_path.read_bytes())
    case = tmp_path / "case"
    run = _run_set(env, home.root, case)
    assert run.returncode == 0, run.stdout + run.stderr
    data = __import__("json5").loads(home.config_path.read_text())
    ch = data["channels"]
    assert ch["discord"]["dm"]["policy"] == "disabled" and "dmPolicy" not in ch["discord"]
    assert ch["slack"]["dm"]["policy"] == ch["googlechat"]["dm"]["policy"] == "disabled"
    assert "dmPolicy" not in ch["slack"] and "dmPolicy" not in ch["googlechat"]
    assert ch["discord"]["accounts"]["community"]["dm"]["policy"] == "disabled"
    assert ch["telegram"]["dmPolicy"] == "disabled"
    assert {a["dmPolicy"] for a in ch["telegram"]["accounts"].values()} == {"disabled"}
    assert ch["matrix"]["dm"]["policy"] == ch["msteams"]["dmPolicy"] == "disabled"
    post = tmp_path / "post.json"
    post.write_bytes(home.config_path.read_bytes())
    rc, lines = _git_diff(pre, post)
    assert rc == 1 and lines and all(POLICY_LINE.search(ln) for ln in lines), lines
    assert _comments(post.read_text()) == _comments(pre.read_text())
    back = _run_restore(env, home.root, case, *accept_any_open_dm())
    assert back.returncode == 0, back.stdout + back.stderr
    assert home.config_path.read_bytes() == pre.read_bytes()


# ---- the table against the real schemas -------------------------------------------------------------

DUMP_9 = r"""
const [file] = process.argv.slice(1);
const m = await import(file);
const out = {};
for (const e of m.t) {
  const p = e.schema.properties || {};
  const acc = p.accounts && p.accounts.additionalProperties;
  const ap = (acc && acc.properties) || {};
  const dmProps = (p.dm && p.dm.properties) || {};
  const direct = p.direct && p.direct.additionalProperties && p.direct.additionalProperties.properties;
  out[e.channelId] = {
    dmPolicy: "dmPolicy" in p, dmNested: "policy" in dmProps, accounts: !!p.accounts,
    accDmPolicy: "dmPolicy" in ap, accDmNested: !!(ap.dm && ap.dm.properties && "policy" in ap.dm.properties),
    accOpen: !!acc && acc.additionalProperties !== false && !acc.properties?.dmPolicy,
    groupPolicy: "groupPolicy" in p, directDm: !!(direct && "dmPolicy" in direct),
  };
}
console.log(JSON.stringify(out));
"""


def _node(script: str, *args: str, cwd: Path) -> Any:
    node = node_bin_dir() / "node"
    if not node.exists():
        pytest.skip(f"node not found at {node} (run make deps)")
    proc = subprocess.run([str(node), "--input-type=module", "-e", script, "--", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_current_table_matches_the_bundled_channel_schemas_of_2026_9_6() -> None:
    rel = release("2026.9.6")
    if rel.missing():
        pytest.skip(rel.missing())
    meta = next((rel.package_dir / "dist").glob("bundled-channel-config-metadata.generated-*.mjs"))
    schemas = _node(DUMP_9, str(meta), cwd=rel.package_dir)
    assert schemas, "no channel schemas found"
    for cid, s in schemas.items():
        rule = CURRENT.get(cid)
        assert rule is not None, f"channel {cid} of 2026.9.6 has no row in dm_policy.CURRENT"
        if s["dmPolicy"]:
            assert rule.dm == ("dmPolicy",), cid
        elif s["dmNested"]:
            assert rule.dm == ("dm", "policy"), cid
        elif cid != "synology-chat":  # loose schema; its docs define dmPolicy
            assert rule.dm is None, cid
        if s["accDmPolicy"]:
            assert rule.accounts and rule.account_dm == ("dmPolicy",), cid
        if s["accDmNested"] or (cid == "matrix" and s["accOpen"]):
            assert rule.accounts and rule.account_dm == ("dm", "policy"), cid
        if not s["accounts"] and cid not in ("synology-chat", "twitch"):
            assert not rule.accounts or rule.account_dm is None, cid
        assert rule.direct_dm == s["directDm"], cid
        if not s["groupPolicy"]:
            assert rule.group is None or cid in ("synology-chat", "twitch"), cid


DUMP_1 = r"""
const base = process.argv[1];
const core = await import(base + "/dist/config/zod-schema.providers-core.js");
const wa = await import(base + "/dist/config/zod-schema.providers-whatsapp.js");
const shape = (s) => { while (s && !s.shape && (s._def?.schema || s._def?.innerType || s.innerType)) {
  s = s._def?.schema || s._def?.innerType || s.innerType(); } return s?.shape || {}; };
const out = {};
const schemas = { telegram: core.TelegramConfigSchema, discord: core.DiscordConfigSchema,
  slack: core.SlackConfigSchema, googlechat: core.GoogleChatConfigSchema, signal: core.SignalConfigSchema,
  imessage: core.IMessageConfigSchema, bluebubbles: core.BlueBubblesConfigSchema,
  msteams: core.MSTeamsConfigSchema, whatsapp: wa.WhatsAppConfigSchema };
for (const [id, s] of Object.entries(schemas)) {
  const sh = shape(s);
  out[id] = { dmPolicy: "dmPolicy" in sh, dm: "dm" in sh, accounts: "accounts" in sh, direct: "direct" in sh };
}
console.log(JSON.stringify(out));
"""


def test_legacy_table_matches_the_core_schemas_of_2026_1_29() -> None:
    rel = release("2026.1.29")
    if rel.missing():
        pytest.skip(rel.missing())
    schemas = _node(DUMP_1, str(rel.package_dir), cwd=rel.package_dir)
    for cid, s in schemas.items():
        rule = LEGACY[cid]
        if s["dmPolicy"]:
            assert rule.dm == ("dmPolicy",), cid
        else:
            assert s["dm"] and rule.dm == ("dm", "policy"), cid
        assert rule.accounts == s["accounts"], cid
        assert not rule.direct_dm, cid
