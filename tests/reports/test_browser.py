"""The HTML report in a real headless Chromium (installed by `make browser` from Debian packages): it loads with
no console errors and no network requests, and a screenshot is not blank. Printing to PDF (`--format pdf`): see
test_pdf_print.py."""
from __future__ import annotations

import re

import numpy as np
import pytest

from reports.browser import find_chromium, run_chromium

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason="Chromium not installed (run `make browser`)")]
CONSOLE = re.compile(r"CONSOLE|Failed to load resource|ERR_[A-Z_]+|Refused to", re.I)


def console_problems(html_path):
    proc = run_chromium(["--enable-logging=stderr", "--v=0", "--log-level=0", "--virtual-time-budget=3000",
                         "--dump-dom", html_path.as_uri()])
    lines = [ln for ln in proc.stderr.splitlines() if CONSOLE.search(ln)]
    return proc, lines


def test_the_detector_sees_a_console_error_in_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script><img src="missing.png"></body></html>')
    _proc, lines = console_problems(bad)
    assert lines, "the console check must be able to fail"


def test_report_loads_without_console_errors(demo_run):
    _code, out, _ = demo_run
    proc, lines = console_problems(out / "report.html")
    assert proc.returncode == 0
    assert lines == []
    assert "NIST AI RMF" in proc.stdout  # the DOM was rendered


def test_screenshot_is_not_blank(demo_run, tmp_path):
    from PIL import Image
    _code, out, _ = demo_run
    shot = tmp_path / "shot.png"
    run_chromium([f"--screenshot={shot}", "--window-size=1200,1600", (out / "report.html").as_uri()])
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # text and charts, not an empty page


def test_demo_report_is_under_2_mb(demo_run):
    _code, out, _ = demo_run
    assert (out / "report.html").stat().st_size < 2_000_000


A11Y_PROBE = """<script>
function lum(c) { const m = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
  .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; }
function ratio(a, b) { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); }
window.addEventListener("load", () => {
  const out = {contrast: [], main: document.querySelectorAll("main").length,
    tables: document.querySelectorAll("table").length,
    uncaptioned: [...document.querySelectorAll("table")].filter(t => !t.querySelector("caption")).length,
    unscoped: [...document.querySelectorAll("th")].filter(th => !th.hasAttribute("scope")).length,
    shapes: [...document.querySelectorAll("svg")].map(s => new Set([...s.querySelectorAll("[data-marker]")]
      .map(m => m.getAttribute("data-marker"))).size)};
  for (const el of document.querySelectorAll(".badge, .verdict")) {
    const st = getComputedStyle(el);
    out.contrast.push([el.className, ratio(st.color, st.backgroundColor)]);
  }
  const pre = document.createElement("pre"); pre.id = "a11y"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def test_the_report_is_accessible_landmark_captions_scopes_contrast_and_shapes(demo_run, tmp_path):
    import json
    _code, out, _ = demo_run
    html = (out / "report.html").read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)  # let the probe run
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", A11Y_PROBE + "</body>"), encoding="utf-8")
    proc = run_chromium(["--virtual-time-budget=3000", "--dump-dom", probe.as_uri()])
    found = re.search(r'<pre id="a11y">(.*?)</pre>', proc.stdout, re.S)
    assert found, "the probe did not run"
    a = json.loads(found.group(1).replace("&quot;", '"'))
    assert a["main"] == 1
    assert a["tables"] > 20 and a["uncaptioned"] == 0 and a["unscoped"] == 0
    assert a["contrast"] and min(r for _, r in a["contrast"]) >= 4.5, a["contrast"]
    assert max(a["shapes"]) >= 2  # series differ by marker shape, not only by colour


GALLERY_PROBE = """<script>
window.addEventListener("load", () => {
  const box = el => { const b = el.getBoundingClientRect();
    return [b.left + window.scrollX, b.top + window.scrollY, b.width, b.height]; };
  const out = [...document.querySelectorAll("figure.gallery")].map(g => ({box: box(g),
    images: [...g.querySelectorAll("img")].map(i => ({box: box(i), alt: i.alt, width: i.naturalWidth,
                                                       done: i.complete}))}));
  const pre = document.createElement("pre"); pre.id = "gallery"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def test_the_adversarial_example_gallery_is_rendered_and_visible(demo_run, tmp_path):
    """The gallery of every variant in a real Chromium: its images decode (naturalWidth > 0) and show on screen.
    Headless Chromium paints a page scrolled by a fragment or a script blank, so the screenshot is of a window tall
    enough to reach the gallery, cropped to it (gallery.png)."""
    import html as html_lib
    import json

    from PIL import Image
    _code, out, _ = demo_run
    page = (out / "report.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", GALLERY_PROBE + "</body>"), encoding="utf-8")
    proc = run_chromium(["--virtual-time-budget=3000", "--window-size=1200,1000", "--dump-dom", probe.as_uri()])
    found = re.search(r'<pre id="gallery">(.*?)</pre>', proc.stdout, re.S)
    assert found, "the probe did not run"
    galleries = json.loads(html_lib.unescape(found.group(1)))
    assert len(galleries) == len(demo_run[2]["variants"])  # one gallery per variant
    bottom = max(g["box"][1] + g["box"][3] for g in galleries)
    shot = tmp_path / "shot.png"
    run_chromium([f"--screenshot={shot}", f"--window-size=1200,{int(bottom) + 20}", (out / "report.html").as_uri()])
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    for g in galleries:
        x, y, w, h = (int(round(v)) for v in g["box"])
        crop = pixels[y:y + h, x:x + w]
        Image.fromarray(crop.astype(np.uint8)).save(tmp_path / "gallery.png")
        assert crop.size and crop.std() > 10 and (crop < 128).mean() > 0.01      # not blank: images and text
        shown = [i for i in g["images"] if i["done"] and i["width"] > 0 and i["alt"]
                 and pixels[int(i["box"][1]):int(i["box"][1] + i["box"][3]),
                            int(i["box"][0]):int(i["box"][0] + i["box"][2])].std() > 5]
        assert len(shown) >= 24, f"{len(shown)} of {len(g['images'])} images rendered"  # 8 examples x 3 panels
