"""json5edit: the span-aware scanner, the splice editor, and a property test over random documents."""

from __future__ import annotations

import os
import re
from typing import Any

import json5
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moltir.errors import EXIT_USAGE
from moltir.openclaw.json5edit import (
    DELETE,
    Json5Error,
    apply_splices,
    compute_splices,
    expected_value,
    parse,
    same_value,
    set_values,
    unified_diff,
)

CONFIG = """// OpenClaw config, hand-written
{
  gateway: { mode: "local", port: 18789 },
  channels: {
    /* the bot everyone talks to */
    telegram: {
      enabled: true,
      dmPolicy: 'open', // TODO tighten
      accounts: {
        work: { name: "work" },
        home: {
          dmPolicy: "pairing",
        },
      },
    },
    discord: {
      enabled: true,
      "dmPolicy": "allowlist"
    },
    slack: {},
  },
}
"""


# ---- parse -----------------------------------------------------------------------------------

def test_value_equals_json5_and_locations_point_at_the_text() -> None:
    doc = parse(CONFIG, source="openclaw.json")
    assert same_value(doc.value, json5.loads(CONFIG))
    assert doc.locate(("channels", "telegram", "dmPolicy")) == (8, 17)
    assert doc.key_location(("channels", "telegram", "dmPolicy")) == (8, 7)
    # a missing path locates its deepest existing parent
    assert doc.locate(("channels", "telegram", "nope", "deeper")) == doc.locate(("channels", "telegram"))
    assert doc.missing_prefix(("channels", "slack", "dm", "policy")) == ("channels", "slack", "dm")
    assert doc.missing_prefix(("channels", "slack")) is None
    assert [CONFIG[a:b] for a, b in doc.comments] == [
        "// OpenClaw config, hand-written", "/* the bot everyone talks to */", "// TODO tighten"]


def test_locate_array_items() -> None:
    doc = parse('{steps: [\n  {id: "a"},\n  {id: "b", action: 3},\n]}')
    assert doc.locate(("steps", 1, "action")) == (3, 21)
    assert doc.key_location(("steps", 1, "action")) == (3, 13)
    assert doc.locate(("steps", 7)) == (1, 9)


@pytest.mark.parametrize("text", [
    "{a: 0x1F, b: -0xa, c: .5, d: 5., e: +1, f: 1e3, g: -Infinity, h: NaN, i: -0}",
    "{'single': 'it\\'s', \"dq\": \"a\\u00e9\\x41\\\n b\", $id: 1, _x: 2, naïve: 3, \\u0061b: 4}",
    "[1, [2, [3, {}]], [], {a: []},]",
    '"just a string"',
    "\ufeff// bom\r\n{a: 1,\r\n b: 'x', /* c */}\r\n",
    "{a: '\\0', b: '\\v\\f\\b', c: 'line\u2028sep', d: '\\q'}",
    "{a\u00a0:\u3000 1}",
])
def test_parse_agrees_with_json5(text: str) -> None:
    assert same_value(parse(text).value, json5.loads(text))


@pytest.mark.parametrize(("text", "line", "col", "words"), [
    ("{\n  a: 1,\n  a: 2,\n}", 3, 3, "duplicate key 'a' (first defined at line 2, column 3)"),
    ("{\n  a: 1\n  b: 2\n}", 3, 3, "expected ',' or '}'"),
    ("{a: 'open\n'}", 1, 5, "unterminated string"),
    ("{a: 1,,}", 1, 7, "expected a key"),
    ("{a: 01}", 1, 5, "leading zeros"),
    ("{a: 1} trailing", 1, 8, "after the end of the document"),
    ("{a: /* never closed }", 1, 5, "unterminated /* comment"),
    ("   \n  // only a comment\n", 1, 1, "the file is empty"),
    ("{a: '\\1'}", 1, 6, "octal escapes"),
    ("{a: tru}", 1, 5, "expected a value"),
    ("{a: 1", 1, 6, "found end of file"),
])
def test_syntax_errors_name_file_line_and_column(text: str, line: int, col: int, words: str) -> None:
    with pytest.raises(Json5Error) as err:
        parse(text, source="/x/openclaw.json")
    assert err.value.exit_code == EXIT_USAGE
    assert (err.value.line, err.value.column) == (line, col)
    assert err.value.message.startswith(f"/x/openclaw.json:{line}:{col}: ")
    assert words in err.value.message
    assert "changed nothing" in err.value.one_line()


def test_bom_does_not_count_as_a_column() -> None:
    with pytest.raises(Json5Error) as err:
        parse("\ufeff{a: 1,,}")
    assert err.value.column == 7


# ---- set_values: layout preservation ----------------------------------------------------------

def test_set_replaces_values_keeps_quotes_comments_and_inserts_with_sibling_indent() -> None:
    edits = {
        ("channels", "telegram", "dmPolicy"): "disabled",
        ("channels", "telegram", "accounts", "work", "dmPolicy"): "disabled",
        ("channels", "telegram", "accounts", "home", "dmPolicy"): "disabled",
        ("channels", "discord", "dmPolicy"): "disabled",
        ("channels", "slack", "dmPolicy"): "disabled",
        ("channels", "matrix", "dm", "policy"): "disabled",
    }
    out = set_values(CONFIG, edits)
    assert out == CONFIG.replace(
        "dmPolicy: 'open', // TODO", "dmPolicy: 'disabled', // TODO").replace(
        'work: { name: "work" }', 'work: { name: "work", dmPolicy: "disabled" }').replace(
        'dmPolicy: "pairing"', 'dmPolicy: "disabled"').replace(
        '"dmPolicy": "allowlist"\n', '"dmPolicy": "disabled"\n').replace(
        "slack: {},\n", 'slack: { dmPolicy: "disabled" },\n    matrix: { dm: { policy: "disabled" } },\n')
    assert set_values(out, edits) == out  # idempotent


def test_insert_after_last_member_adds_comma_and_keeps_trailing_comment() -> None:
    text = '{\n  a: {\n    x: 1, // one\n    y: 2 // two\n  }\n}\n'
    out = set_values(text, {("a", "z"): "disabled"})
    assert out == '{\n  a: {\n    x: 1, // one\n    y: 2, // two\n    z: "disabled"\n  }\n}\n'


def test_insert_follows_trailing_comma_style_and_key_quoting() -> None:
    text = '{\n\t"a": {\n\t\t"x": 1,\n\t},\n}'
    out = set_values(text, {("a", "dmPolicy"): "disabled"})
    assert out == '{\n\t"a": {\n\t\t"x": 1,\n\t\t"dmPolicy": "disabled",\n\t},\n}'


def test_insert_into_empty_multiline_object_and_crlf_bom() -> None:
    text = "\ufeff{\r\n  a: 1,\r\n  b: {\r\n    // nothing yet\r\n  },\r\n}\r\n"
    out = set_values(text, {("b", "dmPolicy"): "disabled"})
    assert out == "\ufeff{\r\n  a: 1,\r\n  b: {\r\n    // nothing yet\r\n    dmPolicy: \"disabled\",\r\n  },\r\n}\r\n"


def test_single_quote_documents_get_single_quoted_new_strings() -> None:
    out = set_values("{a: 'x', b: 'y'}", {("c",): "disabled"})
    assert out == "{a: 'x', b: 'y', c: 'disabled'}"


def test_long_new_object_goes_on_several_lines() -> None:
    text = "{\n  gateway: {\n    mode: 'local',\n  },\n}\n"
    value = {"mode": "token", "token": {"source": "exec", "provider": "moltir-keyring",
                                        "id": "openclaw/gateway-token-with-a-long-name"}}
    out = set_values(text, {("gateway", "auth"): value})
    assert json5.loads(out)["gateway"]["auth"] == value
    assert "    auth: {\n      mode: 'token',\n" in out
    assert set_values(out, {("gateway", "auth"): DELETE}) == text


def test_delete_takes_its_line_and_restores_the_comma_style() -> None:
    text = '{\n  a: 1,\n  b: 2\n}'
    assert set_values(text, {("b",): DELETE}) == '{\n  a: 1\n}'
    assert set_values(text, {("a",): DELETE}) == '{\n  b: 2\n}'
    assert set_values('{ a: 1, b: 2, c: 3 }', {("b",): DELETE}) == '{ a: 1, c: 3 }'
    assert set_values('{ a: 1, b: 2 }', {("b",): DELETE}) == '{ a: 1 }'
    assert set_values('{ a: 1, b: 2 }', {("a",): DELETE}) == '{ b: 2 }'
    assert set_values('{ a: 1 }', {("a",): DELETE}) == '{}'
    assert set_values(text, {("zz",): DELETE, ("q", "r"): DELETE}) == text


def test_delete_and_set_in_one_call() -> None:
    text = '{\n  a: 1,\n  b: 2\n}'
    out = set_values(text, {("b",): DELETE, ("c",): 3})
    assert json5.loads(out) == {"a": 1, "c": 3}
    assert out == '{\n  a: 1,\n  c: 3\n}'


def test_unchanged_value_is_not_rewritten_even_in_another_spelling() -> None:
    text = "{a: 0x10, b: 'disabled', c: 1.50}"
    assert set_values(text, {("a",): 16, ("b",): "disabled", ("c",): 1.5}) == text
    # type-strict: 1 is not True, 1 is not 1.0
    assert set_values("{a: 1}", {("a",): True}) == "{a: true}"
    assert set_values("{a: 1}", {("a",): 1.0}) == "{a: 1.0}"


def test_path_through_a_non_object_is_refused_with_its_location() -> None:
    text = '{\n  channels: {\n    discord: { dm: "open" },\n  },\n}'
    with pytest.raises(Json5Error) as err:
        set_values(text, {("channels", "discord", "dm", "policy"): "disabled"}, source="c.json5")
    assert err.value.message.startswith("c.json5:3:20: channels.discord.dm is a string, expected an object")
    with pytest.raises(Json5Error, match="the top level is an array"):
        set_values("[1]", {("a",): 1})


def test_bad_edit_requests_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="conflicting edits"):
        set_values("{}", {("a",): 1, ("a", "b"): 2})
    with pytest.raises(TypeError):
        set_values("{}", {("a",): object()})
    with pytest.raises(TypeError):
        set_values("{}", {(): 1})


def test_unified_diff_masks_secret_values_on_context_lines() -> None:
    before = "{\n  botToken: '123:AAsecret',\n  apiKey: \"sk-live\",\n  dmPolicy: 'open',\n}\n"
    after = before.replace("'open'", "'disabled'")
    diff = unified_diff(before, after, "/h/openclaw.json")
    assert "123:AAsecret" not in diff and "sk-live" not in diff
    assert "-  dmPolicy: 'open',\n+  dmPolicy: 'disabled',\n" in diff
    assert diff.startswith("--- /h/openclaw.json (now)\n+++ /h/openclaw.json (after)\n")
    assert unified_diff(before, before, "x") == ""
    assert "\\ No newline at end of file" in unified_diff("{a: 1}", "{a: 2}", "x")


# ---- property test ---------------------------------------------------------------------------

KEYS = ["a", "b", "dmPolicy", "enabled", "accounts", "dm", "policy", "x-y", "$k", "_p", "naïve",
        "with space", "it's", 'q"t']
PLAIN = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
SCALARS = st.one_of(
    st.sampled_from([None, True, False, 0, 1, -7, 255, 1.5, -0.25, "", "open", "pairing", "a'b", 'q"', "é\\n"]),
    st.text(alphabet="abc '\"\\\té\u2028", max_size=6),
)
JSON_TREE = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.sampled_from(KEYS), kids, max_size=4)),
    max_leaves=12,
)
DOC_TREE = st.dictionaries(st.sampled_from(KEYS), JSON_TREE, min_size=0, max_size=4)
NEW_VALUES = st.sampled_from(["disabled", "allowlist", False, None, 3, {"policy": "disabled"}, ["*"], {}])
COMMENT_TEXT = st.text(alphabet="abc */é\t", max_size=8).map(lambda s: s.replace("*/", "*_/"))


class Writer:
    """Renders a value as JSON5 with random (but valid) formatting choices."""

    def __init__(self, data: st.DataObject) -> None:
        self.d = data
        self.nl = data.draw(st.sampled_from(["\n", "\r\n"]))
        self.unit = data.draw(st.sampled_from(["  ", "    ", "\t"]))

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.d.draw(strategy)

    def comment(self, inline_only: bool = False) -> str:
        if not self.draw(st.booleans()):
            return ""
        text = self.draw(COMMENT_TEXT)
        if inline_only or self.draw(st.booleans()):
            return f"/*{text}*/"
        return f"//{text}"

    def string(self, s: str) -> str:
        q = self.draw(st.sampled_from(['"', "'"]))
        out = []
        tab = "\\t" if "\t" in s and self.draw(st.booleans()) else "\t"
        for ch in s:
            if ch == q or ch == "\\":
                out.append("\\" + ch)
            else:
                out.append(tab if ch == "\t" else ch)
        return q + "".join(out) + q

    def key(self, k: str) -> str:
        if PLAIN.match(k) and self.draw(st.booleans()):
            return k
        return self.string(k)

    def number(self, v: int | float) -> str:
        if isinstance(v, int) and v > 0 and self.draw(st.booleans()):
            return hex(v)
        return repr(v)

    def value(self, v: Any, indent: str) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return self.number(v)
        if isinstance(v, str):
            return self.string(v)
        if isinstance(v, list):
            body = ", ".join(self.value(x, indent) for x in v)
            trail = "," if v and self.draw(st.booleans()) else ""
            return f"[{body}{trail}]"
        return self.obj(v, indent)

    def obj(self, v: dict[str, Any], indent: str) -> str:
        if not v:
            return "{" + self.nl + indent + "}" if self.draw(st.booleans()) else "{}"
        if self.draw(st.booleans()):  # one line
            parts = [f"{self.key(k)}: {self.value(x, indent)}" for k, x in v.items()]
            trail = "," if self.draw(st.booleans()) else ""
            c = self.comment(inline_only=True)
            return "{ " + ", ".join(parts) + trail + (" " + c if c else "") + " }"
        inner = indent + self.unit
        lines = []
        items = list(v.items())
        trailing = self.draw(st.booleans())
        for i, (k, x) in enumerate(items):
            c = self.comment()
            if c:
                lines.append(inner + c)
            comma = "," if i < len(items) - 1 or trailing else ""
            after = self.comment()
            lines.append(f"{inner}{self.key(k)}: {self.value(x, inner)}{comma}" + (" " + after if after else ""))
        return "{" + self.nl + self.nl.join(lines) + self.nl + indent + "}"

    def document(self, tree: dict[str, Any]) -> str:
        head = self.comment()
        bom = "\ufeff" if self.draw(st.booleans()) else ""
        body = self.obj(tree, "")
        return bom + (head + self.nl if head else "") + body + (self.nl if self.draw(st.booleans()) else "")


def object_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                out.extend(object_paths(v, (*prefix, k)))
    return out


def leaf_paths(value: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in value.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out.extend(leaf_paths(v, (*prefix, k)))
    return out


@st.composite
def doc_and_edits(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[tuple[str, ...], Any]]:
    tree = draw(DOC_TREE)
    text = Writer(draw(st.data())).document(tree)
    candidates = leaf_paths(tree)
    for p in object_paths(tree):
        candidates.append((*p, draw(st.sampled_from(["dmPolicy", "groupPolicy", "new key"]))))
        candidates.append((*p, "dm", "policy"))
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=5, unique=True))
    edits: dict[tuple[str, ...], Any] = {}
    for p in sorted(chosen, key=len):
        if any(p[:len(q)] == q or q[:len(p)] == p for q in edits):
            continue
        edits[p] = draw(NEW_VALUES)
    return text, tree, edits


def _walk(value: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        value = value[k]
    return value


CANONICAL = re.compile(r'^(null|true|false|-?[1-9][0-9]*|0|"[A-Za-z0-9 ]*"|\'[A-Za-z0-9 ]*\')$')
FUZZ_EXAMPLES = int(os.environ.get("MOLTIR_FUZZ_EXAMPLES", "2000"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc_and_edits())
def test_property_edits_are_exact_local_and_idempotent(case: tuple[str, dict[str, Any], dict[Any, Any]]) -> None:
    text, tree, edits = case
    assert same_value(parse(text).value, tree)  # the generator writes valid JSON5 (parse() checks json5 agrees)
    # edits that run through a non-object must be refused, nothing else may fail
    try:
        out = set_values(text, edits)
    except Json5Error as err:
        assert "expected an object" in err.message
        return
    # 1. re-parse equals the intended dict
    want = expected_value(tree, edits)
    assert same_value(parse(out).value, want)  # parse() itself insists on json5.loads agreeing
    # 2. every splice is a pure insertion or the exact span of the old value; nothing else moved
    doc = parse(text)
    splices = compute_splices(doc, edits)
    assert apply_splices(text, splices) == out
    for s in splices:
        if s.start != s.end:
            spans = [(n.start, n.end) for p in edits if (n := doc.node_at(p)) is not None]
            assert (s.start, s.end) in spans
    after = parse(out)
    replaced = [(s.start, s.end) for s in splices if s.start != s.end]
    kept = [text[a:b] for a, b in doc.comments if not any(r0 <= a < r1 for r0, r1 in replaced)]
    assert kept == [out[a:b] for a, b in after.comments]
    assert out.startswith("\ufeff") == text.startswith("\ufeff")
    if "\r\n" in text:
        assert "\n" not in out.replace("\r\n", "")
    # 3. a second pass changes nothing
    assert set_values(out, edits) == out
    # 4. the inverse edits give the original back: byte for byte when the old tokens are canonical
    inverse: dict[tuple[str, ...], Any] = {}
    canonical = True
    for p in edits:
        missing = doc.missing_prefix(p)
        if missing is not None:
            inverse[missing] = DELETE
        else:
            node = doc.node_at(p)
            assert node is not None
            inverse[p] = _walk(tree, p)
            token = text[node.start:node.end]
            # a string token keeps its quote style only while it stays a string
            canonical = canonical and bool(CANONICAL.match(token)) and (
                token[0] not in "'\"" or isinstance(edits[p], str))
    back = set_values(out, inverse)
    assert same_value(parse(back).value, tree)
    if canonical:
        assert back == text
