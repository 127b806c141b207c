"""Shared fixtures: the profile and data root chosen on the command line, the book
executed and rendered once per test session (tests/test_book.py), and a local HTTP
server on 127.0.0.1 for the download tests."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import sys
import threading
from collections import Counter
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
    parser.addoption(
        "--paper-smoke",
        action="store_true",
        help="run tests/test_paper_smoke.py: every chapter at the paper's sizes (~20 min)",
    )


def executed_chapter_problems(executed: Path) -> list[str]:
    """What went wrong in an executed chapter: its error outputs (``cell i: Name: message``,
    except in cells tagged ``raises-exception``) and code cells that never ran."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    problems = [
        f"cell {i}: {out.ename}: {out.evalue}"
        for i, cell in code
        for out in cell.get("outputs", [])
        if out.output_type == "error" and "raises-exception" not in cell.metadata.get("tags", [])
    ]
    not_run = [i for i, cell in code if not cell.get("execution_count")]
    if not_run:
        problems.append(f"code cells {not_run} did not run")
    return problems


#: Where ``make book`` leaves the executed chapters and the rendered book.
BOOK_EXECUTED, BOOK_HTML = ROOT / "_build" / "executed", ROOT / "_build" / "html"
#: The xdist group of every test that needs :func:`book_build`: one worker executes the
#: book while the other runs the rest (``make test`` runs ``pytest -n 2 --dist loadgroup``).
BOOK_GROUP = "book"


def chosen_data_root(config) -> Path:
    """The ``--data-root`` given to pytest, relative paths taken from the repository."""
    data_root = Path(config.getoption("--data-root"))
    return data_root if data_root.is_absolute() else ROOT / data_root


def _reusable_book(config):
    """``make book``'s execution when it can stand for executing the book here, or None."""
    import book

    return book.reusable_execution(
        BOOK_EXECUTED, config.getoption("--profile"), chosen_data_root(config)
    )


def pytest_report_header(config):
    if config.getoption("--skip-chapters"):
        return "chapters: skipped (--skip-chapters)"
    record = _reusable_book(config)
    if record:
        return f"chapters: reusing make book's execution ({BOOK_EXECUTED}, run folder {record['run_root']})"
    return "chapters: executed afresh into _build/test (no matching complete make book run)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every test that needs the executed book joins :data:`BOOK_GROUP` (before xdist
    reads the groups), so a single worker executes it."""
    for item in items:
        if "book_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(BOOK_GROUP))


@pytest.fixture(scope="session")
def book_build(request):
    """The book executed on the chosen profile and rendered.

    Reuses ``make book``'s executed chapters and run folder when a complete run from an
    empty run folder wrote them from the current sources (``book.reusable_execution``),
    and its rendering when it shows that execution; otherwise executes every chapter with
    papermill into ``_build/test`` and renders it there.

    Returns a dict with ``executed`` (folder of executed notebooks), ``html`` (rendered
    book or None if execution failed), ``status`` (0 when every chapter ran), ``runs``
    and ``data_root`` (the absolute folders the chapters were given) and ``reused``.
    """
    if request.config.getoption("--skip-chapters"):
        pytest.skip("--skip-chapters given")
    import book

    data_root = chosen_data_root(request.config)
    record = _reusable_book(request.config)
    if record:
        shown = BOOK_HTML / book.RECORD
        current = {**record, "rendering": book.rendering_fingerprint()}
        html = BOOK_HTML if shown.exists() and json.loads(shown.read_text()) == current else None
        if html is None:
            html = ROOT / "_build" / "test" / "html"
            if book.render(BOOK_EXECUTED, html) != 0:
                html = None
        return {
            "executed": BOOK_EXECUTED,
            "html": html,
            "status": 0,
            "runs": Path(record["run_root"]),
            "data_root": data_root.resolve(),
            "reused": True,
        }
    out = ROOT / "_build" / "test"
    shutil.rmtree(out, ignore_errors=True)
    status = book.execute(
        request.config.getoption("--profile"), data_root, out / "runs", out / "executed"
    )
    html = None
    if status == 0 and book.render(out / "executed", out / "html") == 0:
        html = out / "html"
    return {
        "executed": out / "executed",
        "html": html,
        "status": status,
        "runs": out / "runs",
        "data_root": data_root.resolve(),
        "reused": False,
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a test module: tiny models and per-step ops run far faster
    without inter-thread hand-offs (use with ``pytestmark = usefixtures(...)``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def assert_same_tensors(a, b):
    """Nested dicts/lists of tensors and plain values are equal, tensors bit for bit."""
    import torch

    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_tensors(x, y)
    else:
        assert a == b


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
    from synthsep_lib.pipeline.runs import RunPaths

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


@pytest.fixture(scope="module")
def vocoder_mini_run(encoder_mini_run):
    """:func:`encoder_mini_run` and ``data_root``, the folder holding ``mini/LJSpeech-1.1``
    (what the vocoder trainers read the corpus from)."""
    return {**encoder_mini_run, "data_root": Path(encoder_mini_run["lj"].root).parents[1]}


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; counts hits; can break off a response half way once."""

    def log_message(self, format, *args):  # noqa: A002 - silence the server log
        pass

    def do_GET(self):  # noqa: N802 - http.server naming
        path = self.path.split("?")[0]
        self.server.hits[path] += 1
        if path in self.server.break_once:
            self.server.break_once.discard(path)
            data = (Path(self.directory) / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


class LocalServer:
    """Serves ``root`` on 127.0.0.1 (a free port) from a thread; counts GETs per path."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_Handler, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.hits = Counter()
        self.httpd.break_once = set()
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        self.closed = False

    @property
    def hits(self) -> Counter:
        """GET requests per URL path (query string dropped), e.g. ``hits["/a.zip"]``."""
        return self.httpd.hits

    def put(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``/<name>``; return its URL."""
        (self.root / name).write_bytes(data)
        return f"{self.url}/{name}"

    def break_next(self, name: str) -> None:
        """The next GET of ``/<name>`` sends half the body and closes the connection."""
        self.httpd.break_once.add(f"/{name}")

    def close(self) -> None:
        """Stop serving (idempotent); afterwards nothing listens on the port."""
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def local_server(monkeypatch):
    """Factory ``local_server(root) -> LocalServer``; every server stops after the test.

    Requests to 127.0.0.1 bypass any proxy, and ``SYNTHSEP_MIRROR`` is unset so that only
    URLs a test chooses are used.
    """
    from synthsep_lib.pipeline.downloads import MIRROR_ENV

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    servers: list[LocalServer] = []

    def start(root: Path) -> LocalServer:
        servers.append(LocalServer(root))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


# ------------------------------------------------------------------- a real browser
#: The system Chromium the browser tests drive (Debian's ``chromium``; `.ci/run` installs
#: it). Playwright downloads no browser of its own here.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Headless flags for a closed network: without the background-networking ones Chromium
#: keeps trying Google's hosts; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium driven by Playwright (one per test session).

    Skipped, saying what to install, where Chromium or Playwright is missing.
    """
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium on this machine: install Debian's `chromium` package to run the browser tests"
        )
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
    )
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()


# ---------------------------------------------------------- a tiny Chapter-1 run folder
def speech_like(seconds: float = 1.0, seed: int = 0, peak: float = 0.5):
    """Voiced-speech-like signal in the saved-audio layout (see test_resynthesis.py)."""
    import numpy as np

    from synthsep_lib import audio
    from synthsep_lib.config import FeatureConfig

    cfg = FeatureConfig()
    sr = cfg.sample_rate
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(120 + 20 * np.sin(2 * np.pi * 3 * t)) / sr
    x = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 41))
    x = x * (0.2 + 0.8 * np.sin(2 * np.pi * 1.3 * t) ** 2)
    x = x + 0.02 * x.std() * rng.standard_normal(x.size)
    return audio.pad_for_frames(x / np.max(np.abs(x)) * peak, cfg).astype(np.float64)


def make_test_run(tmp_path, n_pairs: int = 2):
    """A tiny Chapter-1-like run folder: manifest + float test WAVs of n_pairs pairs."""
    import numpy as np
    import pandas as pd

    from synthsep_lib import audio
    from synthsep_lib.mixing import (
        MANIFEST_COLUMNS,
        simulate_mixture_paper,
        write_test_manifest,
    )
    from synthsep_lib.pipeline.runs import RunPaths

    sr = 22050
    paths = RunPaths(tmp_path / "runs", "reduced")
    rows = []
    for pair in range(n_pairs):
        s1 = speech_like(0.5 + 0.25 * pair, seed=pair, peak=0.999).astype(np.float32)
        clip = (0.3 * np.random.default_rng(100 + pair).standard_normal(3000)).astype(np.float32)
        mix = simulate_mixture_paper(s1, clip)
        for kind, wav in (
            ("target", mix.target),
            ("noise", mix.noise),
            ("mixture", mix.mixture),
            ("source", s1),
        ):
            audio.save_wav(paths.test_audio / f"{pair:03d}_{kind}.wav", wav, sr, subtype="FLOAT")
        rows.append(
            {
                "pair": pair,
                "target_id": f"LJ{pair:03d}",
                "noise_file": f"noise-{pair}.wav",
                "noise_offset": 0,
                "noise_peak_scale": mix.noise_gain,
                "mixture_scale": mix.scale,
                "snr_db": mix.snr_db,
                "num_samples": s1.size,
            }
        )
    write_test_manifest(paths.test_manifest, pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)))
    return paths


def spectral_convergence(magnitude, wav, features, *, scale_invariant: bool = True) -> float:
    """``‖a·|STFT(wav)| − S‖_F / ‖S‖_F`` with the authors' analysis STFT: how well a
    waveform (e.g. a Griffin–Lim output) matches a target magnitude S of shape (T, 513)
    or (T, 512). With ``scale_invariant`` ``a`` is the least-squares gain, which removes
    the ≈ 1.5 gain of the authors' unnormalised ISTFT; otherwise ``a = 1``."""
    import numpy as np

    from synthsep_lib.baselines import resynthesis

    got = np.abs(resynthesis.stft_paper(wav, features))
    target = np.asarray(magnitude, dtype=np.float64)
    if target.shape[1] == got.shape[1] - 1:
        target = np.pad(target, ((0, 0), (0, 1)))
    n = min(got.shape[0], target.shape[0])
    got, target = got[:n], target[:n]
    gain = 1.0
    if scale_invariant:
        energy = float(np.sum(got * got))
        gain = float(np.sum(got * target)) / energy if energy > 0 else 0.0
    return float(np.linalg.norm(gain * got - target) / np.linalg.norm(target))
