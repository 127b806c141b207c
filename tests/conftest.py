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


#: Data settings of the small run folder the encoder tests share (3 test pairs).
ENCODER_TEST_DATA = {"lj_test_size": 0.25, "test_pairs": 3}


@pytest.fixture(scope="session")
def encoder_mini_run(tmp_path_factory):
    """A 16-utterance mini corpus and Chapter 1's run folder (splits, manifest, test set).

    Built once per session and shared by the encoder tests; returns the readers, the
    splits and the ``data/`` folder to copy into a test's own run folder.
    """
    from data_scripts.mini_corpus import build_mini_corpus
    from synthsep_lib import corpora, mixing
    from synthsep_lib.config import load_profile
    from synthsep_lib.runs import RunPaths

    base = tmp_path_factory.getbasetemp() / "encoder_mini"
    roots = build_mini_corpus(base / "mini", n_utterances=16, clips_per_category=1, progress=False)
    profile = load_profile("reduced", {"data": ENCODER_TEST_DATA})
    lj, esc = corpora.LJSpeech(roots["ljspeech"]), corpora.ESC50(roots["esc50"])
    paths = RunPaths(base / "runs", "reduced")
    splits = corpora.make_splits(
        lj, corpora.select_noise_clips(esc, profile, progress=False), profile
    )
    corpora.save_splits(paths.splits, splits)
    manifest = mixing.make_test_manifest(splits, lj, esc, profile)
    mixing.write_test_manifest(paths.test_manifest, manifest)
    mixing.write_test_set(manifest, lj, esc, profile, paths.test_audio, progress=False)
    return {"lj": lj, "esc": esc, "splits": splits, "data": paths.data}
