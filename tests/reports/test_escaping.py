"""Nothing a name can forge: Markdown (summary.md, the compare PR comment) and terminal output escape every
user-controlled string with one rule per format, so a crafted results.json cannot add a line, a cell, a heading,
a link, an image, HTML, a mention or an autolink, nor send escape sequences to a terminal."""
from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from audit.cli import main
from audit.config.policy import CompareRule
from audit.core.text import md_inline, terminal
from audit.engine.compare import compare
from reports.compare_md import render_comparison
from reports.markdown import render_markdown

PAYLOADS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
            "![x](http://remote/img)", "@octocat", "\n# advaudit: GO", "a | b", "`code`", "``", "\x1b[2J",
            "https://evil.example", "www.evil.example", "mail@evil.example", "<http://x>", "&lt;", "\\", "**",
            "\u2028", "\u202e", "\r\n---\n", "$x$", "~~s~~", ":x:"]
SPECIAL = "\n\r|<>#`[]()!@\x1b\\*_~&:/.w"
TEXT = st.lists(st.sampled_from(PAYLOADS) | st.text(alphabet=st.sampled_from(SPECIAL) | st.characters(),
                                                    max_size=12), max_size=8).map("".join)
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
PROPERTY = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RENDER_PROPERTY = settings(PROPERTY, max_examples=250)  # whole-document renders: ~20 ms each, half the budget
ZWSP = "\u200b"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def flat(text: str) -> str:
    """``text`` with line breaks, controls, bidi controls and lone surrogates as spaces, outer space stripped."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in BIDI else c
                   for c in text).strip()


def inline_tokens(text: str) -> list:
    return [c for t in MD.parse(text) if t.type == "inline" for c in t.children or ()]


def plain(text: str) -> str:
    """What a reader sees when ``text`` is rendered as one paragraph."""
    return "".join(c.content for c in inline_tokens(text) if c.type == "text").replace(ZWSP, "")


# --- md_inline ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_renders_as_its_own_literal_text(payload):
    out = md_inline(payload)
    blocks = [t.type for t in MD.parse(out)]
    assert blocks in ([], ["paragraph_open", "inline", "paragraph_close"])
    assert {c.type for c in inline_tokens(out)} <= {"text"}
    assert plain(out) == flat(payload)


def test_html_is_entity_escaped():
    assert md_inline("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert md_inline("<img src=x onerror=alert(1)>").startswith("&lt;img ")
    assert md_inline("&lt;") == "&amp;lt;"


def test_links_images_and_code_spans_are_backslash_escaped():
    assert md_inline("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert\\(1\\)\\)"
    assert md_inline("![x](y)") == "\\!\\[x\\]\\(y\\)"
    assert md_inline("`a`") == "\\`a\\`"
    assert md_inline("pgd_at") == "pgd\\_at"
    assert md_inline("a\\") == "a\\\\"


def test_a_line_break_cannot_fake_the_verdict_line_nor_a_cell():
    out = md_inline("ok\n# advaudit: GO")
    assert "\n" not in out and out == "ok \\# advaudit: GO"
    assert md_inline("a|b") == "a\\|b"
    row = f"| {md_inline('x | y | z')} | {md_inline('q' + chr(0x2028) + '|')} |"
    cells = [t for t in MD.parse("| a | b |\n|---|---|\n" + row) if t.type == "td_open"]
    assert len(cells) == 2
    for sep in ("\r", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\t", "\x00"):
        assert md_inline(f"a{sep}b") == "a b"


def test_mentions_and_autolinks_are_broken_by_a_zero_width_space():
    assert md_inline("@octocat") == "@" + ZWSP + "octocat"
    assert md_inline("http://evil/x") == "http:" + ZWSP + "//evil/x"
    assert md_inline("HTTPS://E") == "HTTPS:" + ZWSP + "//E"
    assert md_inline("www.evil.com") == "www" + ZWSP + "\\.evil\\.com"
    assert md_inline("WwW.x") == "WwW" + ZWSP + "\\.x"
    assert not re.search(r"@\w", md_inline("me@evil.example"))


def test_bidi_controls_are_removed():
    assert md_inline("a\u202eb\u2066c\u200fd") == "a b c d"


def test_the_length_is_capped_before_escaping():
    assert md_inline("x" * 10_000) == "x" * 200 + "…"
    assert md_inline("|" * 500) == "\\|" * 200 + "…"
    assert md_inline("x" * 900, limit=1000) == "x" * 900
    assert md_inline(42) == "42" and md_inline(None) == "None"


@PROPERTY
@given(TEXT)
def test_md_inline_of_any_text_is_one_paragraph_of_that_text(text):
    out = md_inline(text, limit=10_000)
    assert {c.type for c in inline_tokens(out)} <= {"text"}
    assert "\n" not in out and not re.search(r"@\w", out) and "://" not in out and "www." not in out.lower()
    assert plain(out) == flat(text).replace(ZWSP, "")


# --- terminal -------------------------------------------------------------------------------------------------

def test_terminal_shows_control_characters_escaped():
    assert terminal("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert terminal("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert terminal("\u202eevil\u2028\x85\x07") == "\\u202eevil\\u2028\\x85\\x07"
    assert terminal("ünïcode ✅ 日本") == "ünïcode ✅ 日本"
    assert terminal(ValueError("x\x1b")) == "x\\x1b"


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet=st.sampled_from(SPECIAL + "\x9b\u2029\u2066\x7f") | st.characters()))
def test_terminal_output_has_no_control_character(text):
    out = terminal(text)
    assert not any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") or c in BIDI for c in out)
    assert terminal("\x1b" + text).startswith("\\x1b")


# --- summary.md and the compare comment keep their structure whatever the names --------------------------------

def structure(text: str) -> dict:
    tokens = MD.parse(text)
    children = [c.type for t in tokens if t.type == "inline" for c in t.children or ()]
    return {"blocks": [t.type for t in tokens],
            "forged": {k: children.count(k) for k in ("link_open", "image", "html_inline", "code_inline")},
            "hash_lines": sum(line.startswith("#") for line in text.splitlines()),
            "lines": len(text.splitlines())}


def assert_same_structure(text: str, benign: dict) -> None:
    assert structure(text) == benign
    assert not re.search(r"@\w", text) and "://" not in text and "www." not in text.lower()


def _finding(r, **kw):
    return dataclasses.replace(r, findings=r.findings[:1] + (dataclasses.replace(r.findings[1], **kw),)
                               + r.findings[2:])


SUMMARY_FIELDS = {
    "candidate": lambda r, s: dataclasses.replace(r, candidate=s, variants=tuple(
        dataclasses.replace(v, name=s) if v.name == r.candidate else v for v in r.variants)),
    "variant": lambda r, s: dataclasses.replace(r, variants=tuple(
        dataclasses.replace(v, name=s) if not v.candidate else v for v in r.variants)),
    "threat_model": lambda r, s: dataclasses.replace(r, threat_model=dataclasses.replace(r.threat_model, name=s)),
    "dataset": lambda r, s: dataclasses.replace(r, dataset=dataclasses.replace(r.dataset, name=s)),
    "class_names": lambda r, s: dataclasses.replace(r, dataset=dataclasses.replace(
        r.dataset, class_names=(s,) * len(r.dataset.class_names))),
    "model_factory": lambda r, s: dataclasses.replace(r, model=dataclasses.replace(r.model, factory=s)),
    "model_source": lambda r, s: dataclasses.replace(r, model=dataclasses.replace(r.model, source=s)),
    "policy_name": lambda r, s: dataclasses.replace(r, policy=dataclasses.replace(r.policy, name=s)),
    "policy_sha256": lambda r, s: dataclasses.replace(r, policy=dataclasses.replace(r.policy, sha256=s)),
    "tool_version": lambda r, s: dataclasses.replace(r, tool={**r.tool, "version": s}),
    "attacks": lambda r, s: dataclasses.replace(r, config={**r.config, "attacks": {
        **r.config["attacks"], "attacks": [s, s], "norm": s}}),
    "finding_title": lambda r, s: _finding(r, title=s),
    "finding_summary": lambda r, s: _finding(r, summary=s),
    "finding_variant": lambda r, s: _finding(r, variant=s),
}


def mutate_all(obj, fields: dict, texts):
    """Every field of ``fields`` set to its own text: each example exercises every field at once."""
    for name, text in zip(sorted(fields), texts, strict=False):
        obj = fields[name](obj, text)
    return obj


@pytest.mark.parametrize("field", sorted(SUMMARY_FIELDS))
def test_each_summary_field_reaches_the_markdown(demo_result, field):
    small = dataclasses.replace(demo_result, findings=demo_result.findings[:3])
    text = render_markdown(SUMMARY_FIELDS[field](small, "placeholder"))
    assert "placeholder" in text or field in ("class_names", "model_source")


def test_summary_md_structure_does_not_depend_on_any_name(demo_result):
    """500 examples, each with arbitrary text in every user-controlled field at once."""
    small = dataclasses.replace(demo_result, findings=demo_result.findings[:3])  # 4x faster, same template paths
    benign = structure(render_markdown(mutate_all(small, SUMMARY_FIELDS, ["placeholder"] * len(SUMMARY_FIELDS))))

    @RENDER_PROPERTY
    @given(st.tuples(*[TEXT] * len(SUMMARY_FIELDS)))
    def check(texts):
        assert_same_structure(render_markdown(mutate_all(small, SUMMARY_FIELDS, texts)), benign)

    check()


def _describe(c, side, **kw):
    return dataclasses.replace(c, **{side: {**getattr(c, side), **kw}})


COMPARE_FIELDS = {
    "base_candidate": lambda c, s: _describe(c, "base", candidate=s),
    "head_candidate": lambda c, s: _describe(c, "head", candidate=s),
    "created": lambda c, s: _describe(_describe(c, "base", created=s), "head", created=s),
    "tool": lambda c, s: _describe(c, "head", tool=s),
    "policy_sha256": lambda c, s: _describe(c, "base", policy_sha256=s),
    "verdict": lambda c, s: _describe(c, "head", verdict=s),
    "attack": lambda c, s: dataclasses.replace(c, deltas=tuple(dataclasses.replace(d, attack=s) if d.attack else d
                                                               for d in c.deltas)),
    "gate_flips": lambda c, s: dataclasses.replace(c, gate_flips=(s, s)),
    "other": lambda c, s: dataclasses.replace(c, other=tuple({**o, "check": s, "metric": s, "better": s}
                                                             for o in c.other)),
}


def test_compare_md_structure_does_not_depend_on_any_name(demo_result):
    """500 examples, each with arbitrary text in every user-controlled field of the comparison at once."""
    base = compare(demo_result, dataclasses.replace(demo_result, candidate="baseline"), CompareRule())
    assert base.other and any(d.attack for d in base.deltas)
    for field, mutate in COMPARE_FIELDS.items():
        assert "placeholder" in render_comparison(mutate(base, "placeholder")).lower(), field
    benign = structure(render_comparison(mutate_all(base, COMPARE_FIELDS, ["placeholder"] * len(COMPARE_FIELDS))))

    @RENDER_PROPERTY
    @given(st.tuples(*[TEXT] * len(COMPARE_FIELDS)))
    def check(texts):
        assert_same_structure(render_comparison(mutate_all(base, COMPARE_FIELDS, texts)), benign)

    check()


def test_summary_md_neutralises_the_issue_payloads(demo_result):
    evil = "x\n# advaudit: GO <script>alert(1)</script> ![i](http://remote/img) [l](javascript:x) @octocat | `"
    md = render_markdown(SUMMARY_FIELDS["candidate"](demo_result, evil))
    assert "<script" not in md and "![" not in md and "](" not in md and "http" + "://" not in md
    assert [line for line in md.splitlines() if line.startswith("#")] == [md.splitlines()[0]]
    assert md.splitlines()[0].startswith("## advaudit: GO for **x \\# advaudit: GO &lt;script&gt;")


# --- advaudit verify prints file names escaped -----------------------------------------------------------------

def test_verify_prints_hostile_file_names_escaped(tmp_path, capsys):
    bundle = tmp_path / "b"
    bundle.mkdir()
    listed = ["evil\u202eKO\x9b2J", "esc\x1b[2J\x1b[1;1H\x08OK"]  # a bidi override and C1 CSI; ANSI and backspace
    (bundle / "SHA256SUMS").write_text("".join(f"{'0' * 64}  {n}\n" for n in listed), encoding="utf-8")
    (bundle / "x\x1b]0;title\x07\nbundle verified").write_text("added", encoding="utf-8")
    assert main(["verify", str(bundle)]) == 1
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert not any(unicodedata.category(c) == "Cc" and c != "\n" or c in BIDI for c in out)
    assert "FAILED evil\\u202eKO\\x9b2J: missing" in out
    assert "FAILED x\\x1b]0;title\\x07\\nbundle verified: not listed" in out
    assert not any(line.startswith("bundle verified") for line in out.splitlines())


def test_cli_errors_print_hostile_text_escaped(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "no\x1b[2J\u2028dir")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u2028" not in err and "no\\x1b[2J\\u2028dir is not a directory" in err
