"""report.pdf prints: A4 by default and Letter on request, "page X of Y" on every page, a running header (candidate,
verdict, run time) and footer (the SHA-256 of the results.json beside it), no page more than half blank before the
last, no heading left as the last line of a page, a table that breaks repeats its header row.

The demo's report is printed twice (A4 by `advaudit render --format pdf`, Letter with `--paper letter`) and read
back with pypdf. Each text run's position is its baseline (pypdf's text visitor: text matrix times CTM); runs on
one baseline make a line. Lines inside the page margins (the template's ``@page`` margins) are the running header
and footer, the others the body.

Half blank, the measure: the fill of a page is how far its lowest body line reaches down the content area
(0: nothing below its top edge, 1: text down to the bottom margin). Every block of the report carries text: tables,
paragraphs, and the charts, which are inline SVG with text labels down to their x-axis title; so a page whose fill
is under 0.5 has its lower half empty.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from reports.browser import find_chromium
from reports.pdf import css_string, paper

MM = 72 / 25.4
TOP, BOTTOM = 15 * MM, 16 * MM   # the template's @page margins (15mm 13mm 16mm): header above, footer below
A4, LETTER = (595.3, 841.9), (612.0, 792.0)
FINDINGS_HEADER = "Status Finding Result Threshold (policy) Gating"
chromium = pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (run `make browser`)")


@dataclass
class Page:
    size: tuple[float, float]
    margin: str              # the header and footer lines, joined
    body: list[str]          # body lines, top to bottom
    lowest: float            # baseline of the lowest body line (PDF units from the bottom edge)

    @property
    def fill(self) -> float:
        top, bottom = self.size[1] - TOP, BOTTOM
        return (top - self.lowest) / (top - bottom)


def norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def read_pages(path: Path) -> list[Page]:
    import pypdf
    pages = []
    for page in pypdf.PdfReader(path).pages:
        runs: list[tuple[float, str]] = []

        def visit(text, cm, tm, _font, _size, runs=runs):
            if text.strip():
                runs.append((pypdf.mult(tm, cm)[5], text))
        page.extract_text(visitor_text=visit)
        height = float(page.mediabox.height)
        lines: dict[int, list[str]] = {}
        for y, text in runs:
            key = next((k for k in lines if abs(k - y) <= 1.5), round(y))
            lines.setdefault(key, []).append(text)
        ys = sorted(lines, reverse=True)
        body = [y for y in ys if BOTTOM <= y <= height - TOP]
        pages.append(Page((float(page.mediabox.width), height),
                          norm(" ".join(" ".join(lines[y]) for y in ys if y not in body)),
                          [norm(" ".join(lines[y])) for y in body], min(body, default=height - TOP)))
    return pages


class _Headings(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3"):
            self._text = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3") and self._text is not None:
            self.found.append(norm("".join(self._text)))
            self._text = None

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)


def headings(html: str) -> list[str]:
    parser = _Headings()
    parser.feed(html)
    return parser.found


def orphans(pages: list[Page], heads: list[str]) -> list[tuple[int, str]]:
    """(page number, line) of every page but the last whose last body line is a heading or its last wrapped line."""
    return [(n, p.body[-1]) for n, p in enumerate(pages[:-1], 1) if p.body
            and any(h == p.body[-1] or (len(p.body[-1]) >= 8 and h.endswith(p.body[-1])) for h in heads)]


@pytest.fixture(scope="module")
def printed(demo_run, tmp_path_factory):
    """{"a4": (output dir, pages), "letter": (...)}: the demo rendered to PDF by `advaudit render` twice."""
    pytest.importorskip("pypdf")
    from audit.cli import main
    _code, out, _ = demo_run
    done = {}
    for size, extra in (("a4", []), ("letter", ["--paper", "letter"])):
        target = tmp_path_factory.mktemp("pdf") / size
        assert main(["render", str(out / "results.json"), "--out", str(target), "--format", "pdf", *extra]) in (0, 1)
        done[size] = (target, read_pages(target / "report.pdf"))
    return done


@pytest.mark.slow
@chromium
@pytest.mark.parametrize("size", ["a4", "letter"])
def test_every_page_is_numbered_on_the_paper_asked_for(printed, size):
    target, pages = printed[size]
    recorded = json.loads((target / "results.json").read_text(encoding="utf-8"))["config"]["output"]
    assert recorded.get("paper", "a4") == size  # render --paper records the size it printed on
    want = A4 if size == "a4" else LETTER
    print(f"{size}: {len(pages)} pages")
    assert len(pages) >= 5
    for n, page in enumerate(pages, 1):
        assert abs(page.size[0] - want[0]) < 2 and abs(page.size[1] - want[1]) < 2, (n, page.size)
        assert re.search(rf"\bpage {n} of {len(pages)}\b", page.margin), (n, page.margin)


@pytest.mark.slow
@chromium
def test_the_running_header_and_footer_name_the_run_and_the_results_hash(printed, demo_run):
    _code, _out, data = demo_run
    target, pages = printed["a4"]
    digest = hashlib.sha256((target / "results.json").read_bytes()).hexdigest()
    verdict = data["verdict"].upper()
    for n, page in enumerate(pages, 1):
        assert f"candidate {data['candidate']} — {verdict} — {data['created']}" in page.margin, (n, page.margin)
        assert f"results.json SHA-256 {digest}" in page.margin, (n, page.margin)
    assert "report.pdf" in (target / "SHA256SUMS").read_text()
    assert (target / "report.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.slow
@chromium
@pytest.mark.parametrize("size", ["a4", "letter"])
def test_no_page_before_the_last_is_half_blank_and_no_heading_is_orphaned(printed, size):
    target, pages = printed[size]
    fills = [round(p.fill, 2) for p in pages]
    print(f"{size} fill per page: {fills}")
    assert min(fills[:-1]) >= 0.5, fills
    heads = headings((target / "report.html").read_text(encoding="utf-8"))
    assert "Findings" in heads and len(heads) > 20
    assert orphans(pages, heads) == []


@pytest.mark.slow
@chromium
def test_a_table_that_breaks_repeats_its_header(printed):
    _target, pages = printed["a4"]
    start = next(n for n, p in enumerate(pages) if "Findings" in p.body)
    end = next(n for n, p in enumerate(pages) if "Evidence by check" in p.body)
    continued = [n for n in range(start + 1, end + 1) if pages[n].body[0] != "Evidence by check"]
    assert continued, "the findings table fits one page: this test needs one that breaks"
    assert [pages[n].body[0] for n in continued] == [FINDINGS_HEADER] * len(continued)
    assert FINDINGS_HEADER in pages[start].body  # and it starts with its header on the first page


def test_a_hostile_candidate_cannot_leave_its_css_string():
    evil = 'a"b\\c}\n</style><script>x</script>\u00e9\u4e2d' + "z" * 200
    out = css_string(evil, 60)
    assert re.fullmatch(r"(?:[A-Za-z0-9 ]|\\[0-9A-F]{6} )*", out), out
    assert "</" not in out and '"' not in out and "\n" not in out
    decoded = re.sub(r"\\([0-9A-F]{6}) ", lambda m: chr(int(m.group(1), 16)), out)
    assert decoded == evil[:59] + "\u2026"
    assert css_string("pgd_at 2", 60) == "pgd\\00005F at 2"


def test_paper_defaults_to_a4_and_refuses_an_unknown_size():
    old = SimpleNamespace(config={"output": {"formats": ["html"]}})
    assert paper(old) == "a4" and paper(SimpleNamespace(config={})) == "a4"
    assert paper(SimpleNamespace(config={"output": {"paper": "letter"}})) == "letter"
    with pytest.raises(Exception, match="not a paper size"):
        paper(SimpleNamespace(config={"output": {"paper": "a3"}}))
