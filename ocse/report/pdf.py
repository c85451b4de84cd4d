"""Printing the report's HTML to PDF with headless Chromium (no PDF library needed: the
HTML is self-contained, with inline CSS and SVG and no script)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(RuntimeError):
    """The PDF could not be printed (message says why and what to do)."""


def find_chromium() -> str:
    configured = os.environ.get("OCSE_CHROMIUM")
    if configured:
        if shutil.which(configured):
            return shutil.which(configured)
        raise PdfError(f"OCSE_CHROMIUM={configured!r} is not an executable")
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PdfError(
        "Chromium is needed to print the report's PDF and was not found (tried "
        f"{', '.join(CANDIDATES)}). Install it (Debian: `apt-get install chromium`), set "
        "OCSE_CHROMIUM to its path, or pass --no-pdf for the HTML alone."
    )


def print_pdf(html: Path, pdf: Path, *, timeout: float = 180) -> Path:
    browser = find_chromium()
    with tempfile.TemporaryDirectory(prefix="ocse-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ]
        try:
            completed = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise PdfError(f"Chromium did not print the PDF within {timeout:.0f} s") from None
    if completed.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        tail = (completed.stderr or "").strip().splitlines()[-3:]
        raise PdfError(f"Chromium failed to print the PDF: {' / '.join(tail) or 'no output'}")
    return pdf
