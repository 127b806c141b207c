"""Shared fixtures: the profile and data root chosen on the command line, and the book
executed and rendered once per test session (tests/test_book.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser):
    parser.addoption("--profile", default="reduced", help="profile the chapters run with")
    parser.addoption("--data-root", default="data", help="folder holding mini/ and real/ corpora")
    parser.addoption(
        "--skip-chapters", action="store_true", help="skip chapter execution and HTML checks"
    )


@pytest.fixture(scope="session")
def book_build(request):
    """Execute every chapter with papermill into ``_build/test`` and render the HTML.

    Returns a dict with ``executed`` (folder of executed notebooks), ``html`` (rendered
    book or None if execution failed), ``status`` (0 when every chapter ran).
    """
    if request.config.getoption("--skip-chapters"):
        pytest.skip("--skip-chapters given")
    import book

    out = ROOT / "_build" / "test"
    shutil.rmtree(out, ignore_errors=True)
    data_root = Path(request.config.getoption("--data-root"))
    if not data_root.is_absolute():
        data_root = ROOT / data_root
    status = book.execute(
        request.config.getoption("--profile"), data_root, out / "runs", out / "executed"
    )
    html = None
    if status == 0 and book.render(out / "executed", out / "html") == 0:
        html = out / "html"
    return {"executed": out / "executed", "html": html, "status": status, "runs": out / "runs"}
