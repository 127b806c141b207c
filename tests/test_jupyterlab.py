"""The interactive path of book/running.md: a chapter opened in JupyterLab and used there.

A real JupyterLab server runs on 127.0.0.1 (a free port, a random token, offline: no
news, update or extension-manager requests) and serves a fresh folder holding copies of
the chapters with their parameters injected by papermill (``prepare_only``). Headless
Chromium opens a chapter, runs it from the Run menu, and clicks its widgets as a reader
would; the test then checks what the widgets did: the listening test's answers in its
response store (Chapter 6), a new figure from the data explorer (Chapter 1).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, chosen_data_root

pytestmark = pytest.mark.chapters

#: Seconds for the server to answer or a notebook's kernel to be ready, and for "Run All"
#: of one chapter to finish.
SERVER_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_S = 180
#: Milliseconds Playwright waits for one widget to react.
WIDGET_TIMEOUT_MS = 30_000
#: The listener name the Chapter 6 test answers as.
LISTENER = "lab-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(settings: Path) -> None:
    """User settings: every cell stays in the page (no windowing, so the whole notebook
    can be inspected) and the news/update notifications are off."""
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker": '{"windowingMode": "none"}',
        "@jupyterlab/apputils-extension/notification": (
            '{"fetchNews": "false", "checkForUpdates": false}'
        ),
    }.items():
        package, name = plugin.rsplit("/", 1)
        (settings / package).mkdir(parents=True, exist_ok=True)
        (settings / package / f"{name}.jupyterlab-settings").write_text(values)


class Lab:
    """A JupyterLab server serving ``root`` on 127.0.0.1 with token authentication."""

    def __init__(self, root: Path, state: Path):
        self.root = root
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{_free_port()}"
        _write_settings(state / "settings")
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "OMP_NUM_THREADS": "1",
            # The reader's own Jupyter/IPython configuration and state stay out of it.
            "JUPYTER_CONFIG_DIR": str(state / "config"),
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "IPYTHONDIR": str(state / "ipython"),
        }
        self.log = state / "jupyterlab.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jupyter",
                    "lab",
                    "--no-browser",
                    "--ServerApp.ip=127.0.0.1",
                    f"--ServerApp.port={self.url.rsplit(':', 1)[1]}",
                    "--ServerApp.port_retries=0",
                    "--ServerApp.allow_root=True",  # CI runs as root
                    f"--IdentityProvider.token={self.token}",
                    f"--ServerApp.root_dir={root}",
                    f"--LabApp.user_settings_dir={state / 'settings'}",
                    f"--LabApp.workspaces_dir={state / 'workspaces'}",
                    "--LabApp.news_url=None",
                    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                    "--LabApp.extension_manager=readonly",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=root,
            )

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_until_up(self) -> None:
        """Poll the REST API until the server answers (RuntimeError with its log if not)."""
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.api_request("status"), timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.25)
        raise RuntimeError(
            f"JupyterLab did not answer on {self.url} within {SERVER_TIMEOUT_S} s:\n"
            f"{self.log_tail()}"
        )

    def api_request(self, endpoint: str, method: str = "GET") -> urllib.request.Request:
        return urllib.request.Request(
            f"{self.url}/api/{endpoint}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def shut_down_kernels(self) -> None:
        """Delete every session, which shuts its kernel down (frees its memory)."""
        with urllib.request.urlopen(self.api_request("sessions"), timeout=10) as answer:
            sessions = json.load(answer)
        for session in sessions:
            request = self.api_request(f"sessions/{session['id']}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    """A running :class:`Lab` on an empty folder, stopped after the module (even on failure)."""
    if request.config.getoption("--skip-chapters"):
        pytest.skip("--skip-chapters given")
    base = tmp_path_factory.mktemp("jupyterlab")
    (base / "root").mkdir()
    server = Lab(base / "root", base / "state")
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


def prepare_chapter(lab: Lab, chapter: str, **parameters) -> str:
    """Copy ``notebooks/<chapter>.ipynb`` into the server's folder with ``parameters``
    injected (papermill, nothing executed); return the copy's name."""
    import papermill

    papermill.execute_notebook(
        ROOT / "notebooks" / f"{chapter}.ipynb",
        lab.root / f"{chapter}.ipynb",
        parameters=parameters,
        prepare_only=True,
        progress_bar=False,
    )
    return f"{chapter}.ipynb"


@pytest.fixture
def lab_page(browser, lab):
    """A fresh browser page; its kernels are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
    lab.shut_down_kernels()


def run_all(page, lab: Lab, notebook: str) -> None:
    """Open ``notebook``, wait for its kernel, choose Run > Run All Cells and wait until
    every code cell has run (AssertionError naming the cells that did not)."""
    page.goto(lab.notebook_url(notebook))
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=SERVER_TIMEOUT_S * 1000)
    # The status bar reads "Python 3 (ipykernel) | Idle" once the kernel is connected;
    # Run All before that asks which kernel to start.
    kernel = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
    kernel.wait_for(timeout=SERVER_TIMEOUT_S * 1000)
    prompts = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .jp-InputArea-prompt")
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_S
    clicked = None
    while time.monotonic() < deadline:
        texts = [text.strip() for text in prompts.all_inner_texts()]
        ran = [text[1:-2].isdigit() for text in texts]
        # "[*]:" while queued or running, "[n]:" once run, "[ ]:" before Run All starts
        # and where it stopped at an error.
        if any(ran) and "[*]:" not in texts:
            break
        # On a loaded machine the first Run All can be lost while the kernel connection
        # settles ("| Idle" shows before it is ready), or open a kernel dialog: nothing
        # queued after 20 s, accept any dialog and ask again.
        if (
            "[*]:" not in texts
            and not any(ran)
            and (clicked is None or time.monotonic() - clicked > 20)
        ):
            dialog = page.locator(".jp-Dialog")
            if dialog.count():
                # Run All reached a kernel that was not ready yet: JupyterLab asks which
                # kernel to start; its default is the notebook's own.
                dialog.locator(".jp-mod-accept").first.click()
            else:
                page.keyboard.press("Escape")  # close a menu left open by a lost click
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            clicked = time.monotonic()
        time.sleep(0.5)
    not_run = [i for i, done in enumerate(ran) if not done]
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert texts and not not_run, (
        f"{notebook}: code cells {not_run} of {len(texts)} did not run (an error stops Run "
        f"All; waited up to {RUN_ALL_TIMEOUT_S} s); prompts {texts}; stderr and errors:\n"
        + "\n".join(errors.all_inner_texts())[-3000:]
    )


def copy_listening_inputs(source_root: Path, profile: str, dest_root: Path) -> None:
    """Copy what Chapter 6 reads from a run into a new run root: the outputs of the
    methods its comparisons need and the test mixtures of those pairs."""
    from synthsep_lib.evaluation.listening import design
    from synthsep_lib.pipeline import scoring
    from synthsep_lib.pipeline.runs import RunPaths

    src, dest = RunPaths(source_root, profile), RunPaths(dest_root, profile)
    with_outputs = [method for method, count in scoring.method_outputs(src).items() if count]
    systems = design.compared_systems(design.comparisons_to_run(True, with_outputs))
    pairs = set()
    for method in systems:
        shutil.copytree(src.outputs(method), dest.outputs(method))
        pairs |= {int(p.stem) for p in dest.outputs(method).glob("[0-9][0-9][0-9].wav")}
    dest.test_audio.mkdir(parents=True)
    for pair in sorted(pairs):
        shutil.copy2(src.test_wav(pair, "mixture"), dest.test_wav(pair, "mixture"))


def test_listening_test_widget_records_answers(book_build, lab, lab_page, pytestconfig, tmp_path):
    """Chapter 6 in JupyterLab: two trials answered with the widget are in the store."""
    from synthsep_lib.evaluation.listening import design, session
    from synthsep_lib.pipeline import listening_test
    from synthsep_lib.pipeline.runs import RunPaths

    if book_build["status"] != 0:
        pytest.skip("a chapter failed to execute (see test_book.py)")
    profile = pytestconfig.getoption("--profile")
    # The book's run may be the reader's own runs/ folder, with real answers: the chapter
    # gets a new run root holding copies of its inputs, so its answers go there.
    run_root = tmp_path / "runs"
    copy_listening_inputs(book_build["runs"], profile, run_root)
    notebook = prepare_chapter(
        lab,
        "06_listening_test",
        profile=profile,
        data_root=str(book_build["data_root"]),
        run_root=str(run_root),
        listener=LISTENER,
        n_pairs=2,
    )
    page = lab_page
    run_all(page, lab, notebook)

    naturalness = page.locator(".widget-vbox", has_text=design.ATTRIBUTES["naturalness"]).filter(
        has=page.get_by_role("button", name="Submit")
    )
    for trial, answer in enumerate(["Better", "Worse"], start=1):
        progress = naturalness.get_by_text(f"trial {trial} of ")
        progress.wait_for(timeout=WIDGET_TIMEOUT_MS)
        naturalness.get_by_role("button", name=answer, exact=True).click()
        naturalness.get_by_role("button", name="Submit").click()
        # The widget moves on only after the store accepted the answer.
        progress.wait_for(state="detached", timeout=WIDGET_TIMEOUT_MS)

    store = session.ResponseStore(
        listening_test.listening_dir(RunPaths(run_root, profile)) / "responses.csv"
    )
    answers = store.read().sort_values("trial")
    assert list(answers["listener"]) == [LISTENER, LISTENER], answers
    assert list(answers["attribute"]) == ["naturalness", "naturalness"], answers
    assert list(answers["answer"]) == [design.SCALE.index(a) + 1 for a in ("Better", "Worse")]
    # The widget presents the plan in order: its first two trials were answered.
    assert list(answers["trial"]) == [0, 1] and not answers["simulated"].any(), answers


def test_data_explorer_redraws_after_moving_a_control(lab, lab_page, pytestconfig, tmp_path):
    """Chapter 1 in JupyterLab: moving the SNR slider and mixing again changes the figure."""
    from playwright.sync_api import expect

    notebook = prepare_chapter(
        lab,
        "01_data_simulation",
        profile=pytestconfig.getoption("--profile"),
        data_root=str(chosen_data_root(pytestconfig)),
        # Chapter 1 writes its run's data/ folder: a fresh one, not the reader's runs/.
        run_root=str(tmp_path / "runs"),
        snr_examples=10,
    )
    page = lab_page
    run_all(page, lab, notebook)

    explorer = page.locator(".widget-interact")
    mix = explorer.get_by_role("button", name="mix", exact=True)
    figure = explorer.locator(".widget-output img")

    def mix_figure(unlike: bytes | None = None) -> bytes:
        """Click "mix"; return the explorer's figure (PNG bytes) once it is not ``unlike``
        (AssertionError if no such figure shows within WIDGET_TIMEOUT_MS)."""
        mix.click()
        deadline = time.monotonic() + WIDGET_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            src = figure.get_attribute("src") if figure.count() == 1 else None
            if src:
                prefix = "data:image/png;base64,"
                assert src.startswith(prefix), f"the explorer's figure is not a PNG: {src[:60]}"
                png = base64.b64decode(src[len(prefix) :])
                if png != unlike:
                    return png
            time.sleep(0.2)
        raise AssertionError(
            f"the explorer showed no {'new ' if unlike else ''}figure within "
            f"{WIDGET_TIMEOUT_MS} ms of clicking mix (SNR slider at {readout.inner_text()} dB)"
        )

    slider = explorer.locator(".widget-hslider", has_text="SNR (dB)")
    readout = slider.locator(".widget-readout")
    first = mix_figure()
    before = readout.inner_text()
    track = slider.locator(".noUi-target").bounding_box()
    page.mouse.click(track["x"] + 0.9 * track["width"], track["y"] + track["height"] / 2)
    expect(readout).not_to_have_text(before, timeout=WIDGET_TIMEOUT_MS)
    # Mixing again with unchanged controls draws the very same PNG, so a new one comes
    # from the moved slider.
    mix_figure(unlike=first)
