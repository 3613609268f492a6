"""One set of ``$include`` rules (moltir.openclaw.includes) for both readers: the config editor
(strict) and the evidence snapshot (lenient). OpenClaw 2026.9.6 ``IncludeProcessor``: includes nest
at most 10 levels below the config; include paths are literal (no ``~``/``${VAR}``), relative to the
including file."""

from __future__ import annotations

from pathlib import Path

import pytest

from moltir.errors import MoltirError
from moltir.evidence.configfacts import _config_facts
from moltir.openclaw.configfile import ConfigFile
from moltir.openclaw.includes import MAX_INCLUDE_DEPTH, find_includes, include_specs, include_target, too_deep


def _chain(root: Path, levels: int) -> Path:
    """openclaw.json -> inc1.json5 -> ... -> inc<levels>.json5 (each under ``channels``)."""
    cfg = root / "openclaw.json"
    cfg.write_text('{ gateway: { mode: "local" }, channels: { $include: "./inc1.json5" } }\n')
    for n in range(1, levels + 1):
        body = f'{{ a{n}: {{ $include: "./inc{n + 1}.json5" }} }}\n' if n < levels else "{ leaf: true }\n"
        (root / f"inc{n}.json5").write_text(body)
    return cfg


def test_the_rules() -> None:
    assert MAX_INCLUDE_DEPTH == 10 and not too_deep(10) and too_deep(11)
    assert include_specs("./a.json5") == ["./a.json5"]
    assert include_specs(["a", "b"]) == ["a", "b"]
    for bad in ([], "", [1], {"x": 1}, None, ["a", ""]):
        assert include_specs(bad) is None
    assert include_target("~/x.json5", Path("/etc/oc/openclaw.json")) == Path("/etc/oc/~/x.json5")
    assert include_target("../y/../z.json5", Path("/s/c/openclaw.json")) == Path("/s/z.json5")
    found = list(find_includes({"a": [{"$include": "x"}], "b": {"$include": ["y"], "c": {"$include": "z"}}}))
    assert [w for w, _ in found] == [("a", "0"), ("b",), ("b", "c")]


@pytest.mark.parametrize("levels", [MAX_INCLUDE_DEPTH, MAX_INCLUDE_DEPTH + 1])
def test_both_readers_draw_the_depth_line_in_the_same_place(tmp_path: Path, levels: int) -> None:
    cfg = _chain(tmp_path, levels)
    facts = _config_facts(cfg)
    if levels <= MAX_INCLUDE_DEPTH:
        assert ConfigFile.load_path(cfg, env={}).get(("channels", *(f"a{n}" for n in range(1, levels)))) \
            == {"leaf": True}
        assert len(facts.includes) == levels and not facts.skipped
    else:
        with pytest.raises(MoltirError) as err:
            ConfigFile.load_path(cfg, env={})
        assert err.value.exit_code == 2 and "deeper than 10" in err.value.message
        assert len(facts.includes) == MAX_INCLUDE_DEPTH
        assert [s["source"] for s in facts.skipped] == [str(tmp_path / f"inc{levels}.json5")]


def test_both_readers_take_an_include_path_literally(tmp_path: Path) -> None:
    """``~`` is not the home directory in an include path (OpenClaw resolves includes before any
    expansion): both readers look for the file ``./~/inc.json5`` next to the config."""
    cfg = tmp_path / "openclaw.json"
    cfg.write_text('{ gateway: { mode: "local" }, channels: { $include: "~/inc.json5" } }\n')
    (tmp_path / "~").mkdir()
    (tmp_path / "~" / "inc.json5").write_text("{ telegram: { dmPolicy: 'open' } }\n")
    assert ConfigFile.load_path(cfg, env={}).get(("channels", "telegram", "dmPolicy")) == "open"
    assert _config_facts(cfg).includes == [tmp_path / "~" / "inc.json5"]
