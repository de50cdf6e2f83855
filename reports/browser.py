"""Headless Chromium, found on the machine (installed by ``make browser`` from Debian packages): print an HTML
file to PDF, take a screenshot, and collect console messages. No network: the report makes no requests."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from audit.core.errors import UsageError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
         "--no-default-browser-check", "--hide-scrollbars")


def find_chromium() -> str | None:
    env = os.environ.get("ADVAUDIT_CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def run_chromium(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise UsageError("the PDF format needs Chromium: run `make browser` (installs the Debian package) or set "
                         "ADVAUDIT_CHROMIUM to its path")
    with tempfile.TemporaryDirectory(prefix="advaudit-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UsageError(f"Chromium did not finish within {timeout:g} s") from None


def html_to_pdf(html: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="advaudit-pdf-") as tmp:
        src, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        proc = run_chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", src.as_uri()])
        if not pdf.is_file() or pdf.stat().st_size == 0:
            raise RuntimeError(f"Chromium wrote no PDF (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
        return pdf.read_bytes()
