"""The HTML report in a real headless Chromium (installed by `make browser` from Debian packages): it loads with
no console errors and no network requests, a screenshot is not blank, and it prints to PDF (`--format pdf`)."""
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


def test_format_pdf_writes_a_multi_page_pdf_listed_in_the_manifest(demo_run, tmp_path, capsys):
    from audit.cli import main
    _code, out, _ = demo_run
    assert main(["render", str(out / "results.json"), "--out", str(tmp_path / "r"), "--format", "pdf"]) in (0, 1)
    pdf = (tmp_path / "r" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 3
    assert "report.pdf" in (tmp_path / "r" / "SHA256SUMS").read_text()


def test_demo_report_is_under_2_mb(demo_run):
    _code, out, _ = demo_run
    assert (out / "report.html").stat().st_size < 2_000_000
