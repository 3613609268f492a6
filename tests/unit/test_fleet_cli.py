"""``moltir fleet report`` on the command line: the report as text, Markdown and the moltir.result/1 envelope,
the exit codes (0 all good, 6 a host failed / was unreachable / did not report, 2 bad input)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from test_fleet_report import FOREIGN, FOREIGN_HINT, contained, exported, module_result, refused, write

from moltir.cli import cli
from moltir.errors import EXIT_CODES, EXIT_FLEET_INCOMPLETE
from moltir.result import CODE_NAMES


def _fleet(tmp: Path) -> Path:
    d = tmp / "results"
    d.mkdir()
    write(d / "h1.contain.json", module_result("h1", contained(fp="aaaa1111", critical=1), True))
    write(d / "h2.contain.json", module_result("h2", refused(), False))
    write(d / "h1.evidence.json", module_result("h1", exported("ee" * 32), True, verified=True))
    return d


def test_text_report_and_exit_6_when_a_host_failed(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["fleet", "report", str(_fleet(tmp_path))])
    assert res.exit_code == EXIT_FLEET_INCOMPLETE == 6, res.output
    assert res.output.startswith("moltir fleet report: 2 host(s) reported")
    assert "aaaa1111" in res.output and "ee" * 32 + " (verified)" in res.output
    assert f"h2 [default] contain rc 3: {FOREIGN} (hint: {FOREIGN_HINT})" in res.output


def test_all_contained_exits_0(tmp_path: Path) -> None:
    write(tmp_path / "web1.json", contained(fp="11111111"))
    write(tmp_path / "web2.json", contained(fp="22222222"))
    inv = tmp_path / "hosts.ini"
    inv.write_text("[openclaw]\nweb[1:2]\n\n[openclaw:vars]\nansible_user=oc\n")
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "web1.json"), str(tmp_path / "web2.json"),
                                   "--inventory", str(inv)])
    assert res.exit_code == 0, res.output
    assert "did not report" not in res.output and "problems:" not in res.output


def test_inventory_names_the_hosts_that_did_not_report(tmp_path: Path) -> None:
    d = _fleet(tmp_path)
    inv = tmp_path / "hosts"
    inv.write_text("h1\nh2\nh3  # the one that is down\n")
    res = CliRunner().invoke(cli, ["fleet", "report", str(d), "--inventory", str(inv), "--markdown"])
    assert res.exit_code == 6, res.output
    assert res.output.startswith("## moltir fleet report:") and "**Did not report:** h3" in res.output
    assert "| h1 | default | contained | yes | `aaaa1111` |" in res.output


def test_json_is_the_result_envelope(tmp_path: Path) -> None:
    d = _fleet(tmp_path)
    inv = tmp_path / "hosts"
    inv.write_text("h1\nh2\nh3\n")
    res = CliRunner().invoke(cli, ["fleet", "report", str(d), "--inventory", str(inv), "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == doc["exit_code"] == 6 and doc["ok"] is False
    assert doc["schema"] == "moltir.result/1" and doc["command"] == "fleet report"
    assert doc["data"]["schema"] == "moltir.fleet/1" and doc["data"]["missing"] == ["h3"]
    assert {r["host"] for r in doc["data"]["hosts"]} == {"h1", "h2"}
    assert [e["code"] for e in doc["errors"]] == ["fleet_incomplete", "fleet_incomplete"]
    assert FOREIGN in doc["errors"][0]["message"] and doc["errors"][1]["message"] == "did not report: h3"
    assert all(e["hint"] for e in doc["errors"])


def test_root_json_flag_works_too(tmp_path: Path) -> None:
    write(tmp_path / "web1.json", contained())
    res = CliRunner().invoke(cli, ["--json", "fleet", "report", str(tmp_path)])
    assert res.exit_code == 0 and json.loads(res.output)["ok"] is True


def test_bad_input_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "h1.json").write_text("this is not json\n")
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "h1.json"), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == doc["exit_code"] == 2 and doc["errors"][0]["code"] == "usage"
    assert "h1.json:1" in doc["errors"][0]["message"]
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no such file or folder" in res.output
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path), "--json", "--markdown"])
    assert res.exit_code == 2 and "cannot be combined" in res.output
    yml = tmp_path / "hosts.yml"
    yml.write_text("all: {}\n")
    write(tmp_path / "h1.json", contained())
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "h1.json"), "--inventory", str(yml)])
    assert res.exit_code == 2 and "ansible-inventory -i" in res.output


def test_results_are_required_and_usage_errors_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "moltir", "fleet", "report", "--json"], capture_output=True,
                          text=True, timeout=60, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == doc["exit_code"] == 2 and "RESULTS" in doc["errors"][0]["message"]


def test_exit_code_6_is_named_and_documented() -> None:
    assert CODE_NAMES[6] == "fleet_incomplete" and "did not report" in EXIT_CODES[6]
    res = CliRunner().invoke(cli, ["fleet", "report", "--help"])
    assert res.exit_code == 0 and "ssh web1 moltir contain --yes --json" in res.output and "  6  fleet" in res.output


def test_a_host_put_right_later_is_not_a_problem(tmp_path: Path) -> None:
    """A contain refused first, then contained on the next run: no problem line, the earlier error kept in the
    row's history."""
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    write(tmp_path / "1" / "h1.contain.json", module_result("h1", refused(), False))
    write(tmp_path / "2" / "h1.contain.json", module_result("h1", contained(), True))
    res = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "1"), str(tmp_path / "2"), "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 0 and doc["errors"] == [], doc["errors"]
    row = doc["data"]["hosts"][0]
    assert row["state"] == "contained" and [r["rc"] for r in row["runs"]] == [3, 0] and row["errors"]
    text = CliRunner().invoke(cli, ["fleet", "report", str(tmp_path / "1"), str(tmp_path / "2")]).output
    assert "problems:" not in text
