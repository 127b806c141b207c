"""Parallel vocoder training (synthsep_lib.pipeline.parallel_vocoder_training): the run
folder, exact resume across the start of the adversarial phase, config checks, the
trained model, the non-finite guard, the fine-tuning stage on encoder estimates, and
torchrun with two CPU processes.

A tiny generator (16 channels, one ConvNeXt block) and tiny discriminators on the
16-utterance mini corpus of the encoder tests; a few steps each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from conftest import ENCODER_TEST_DATA, assert_same_tensors  # noqa: E402

from synthsep_lib.config import load_profile  # noqa: E402
from synthsep_lib.files import file_sha1  # noqa: E402
from synthsep_lib.pipeline import parallel_vocoder_training as train_module  # noqa: E402
from synthsep_lib.pipeline.parallel_vocoder_training import (  # noqa: E402
    HISTORY_COLUMNS,
    load_parallel_vocoder,
    train_parallel_vocoder,
)
from synthsep_lib.pipeline.runs import RunConfigError, RunPaths  # noqa: E402
from synthsep_lib.pipeline.torch_training import TrainingWindows  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {"dim": 16, "intermediate_dim": 32, "num_blocks": 1}
TINY = {
    "model": TINY_MODEL,
    "batch_size": 4,
    "window_frames": 8,
    "learning_rate": 5e-4,  # fixed here, whatever the profile's default becomes
    "period_channels": [4, 8],
    "resolution_channels": 4,
    "adversarial_start": 2,  # steps 1–2 spectral only, 3–4 with the discriminators
    "lr_decay": 1.0,
    "clip_grad_norm": 10.0,
    "ema_decay": 0.9,
    "steps": 4,
    "finetune_steps": 2,
    "finetune_rounds": 2,
    "checkpoint_interval": 2,
    "log_interval": 2,
}
#: The tiny Proposed encoder of tests/test_encoder_inference.py.
TINY_ENCODER = {
    "linear_lstm_units": 8,
    "mel_lstm_units": 8,
    "hourglass_filters": 8,
    "hourglass_depth": 1,
}


def overrides(model=None, **parallel) -> dict:
    return {
        "data": ENCODER_TEST_DATA,
        "encoder": TINY_ENCODER,
        "parallel": {**TINY, **parallel, "model": {**TINY_MODEL, **(model or {})}},
    }


def tiny_profile(model=None, **parallel):
    return load_profile("reduced", overrides(model, **parallel))


@pytest.fixture(scope="module")
def mini(vocoder_mini_run):
    return vocoder_mini_run


def new_root(tmp_path: Path, mini, name: str, features_from: Path | None = None) -> Path:
    """A run root with Chapter 1's data (and, if given, already cached clean pairs)."""
    root = tmp_path / name
    paths = RunPaths(root, "reduced")
    shutil.copytree(mini["data"], paths.data)
    if features_from is not None:
        source = RunPaths(features_from, "reduced").parallel_vocoder / "features"
        shutil.copytree(source, paths.parallel_vocoder / "features")
    return root


def train(root, mini, profile=None, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("device", "cpu")
    return train_parallel_vocoder(profile or tiny_profile(), root, mini["data_root"], **kwargs)


def folder_of(root, stage: str = "clean") -> Path:
    return RunPaths(root, "reduced").parallel_vocoder / stage


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def without_seconds(rows):
    """History (a DataFrame or the checkpoint's list of rows) without the timing column."""
    if isinstance(rows, pd.DataFrame):
        return rows.drop(columns=["seconds"])
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def ema_weights(checkpoint: dict) -> dict:
    """The moving average's weights in a checkpoint, named as the generator's."""
    ema = checkpoint["nets"]["ema"]
    return {k.removeprefix("module."): v for k, v in ema.items() if k.startswith("module.")}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, mini):
    """The reference: 4 steps in one call; also the source of the cached clean pairs."""
    root = new_root(tmp_path_factory.mktemp("straight"), mini, "runs")
    torch.set_num_threads(1)
    return root, train(root, mini)


# ---------------------------------------------------------------------------------------
def test_straight_run_artifacts(straight_run, mini):
    root, history = straight_run
    folder = folder_of(root)
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["step"].tolist() == [2, 4]
    assert history["lr"].tolist() == [TINY["learning_rate"]] * 2  # lr_decay 1: constant
    assert np.isfinite(history.drop(columns=["step"]).to_numpy(float)).all()
    adversarial = ["adversarial", "feature_matching", "discriminator"]
    assert (history.loc[0, adversarial] == 0).all()  # steps 1–2: spectral losses only
    assert (history.loc[1, adversarial] > 0).all()
    assert (history[["mel", "stft", "loss", "grad_norm"]] > 0).all().all()
    pd.testing.assert_frame_equal(pd.read_csv(folder / "history.csv"), history)

    config = json.loads((folder / "config.json").read_text())
    assert config["stage"] == "clean" and config["generator"]["dim"] == 16
    assert config["parallel"]["batch_size"] == 4 and "model" not in config["parallel"]
    assert (
        len(config["data"]["splits_sha1"]) == 40 and "clean_checkpoint_sha1" not in config["data"]
    )
    checkpoint = load(folder / "checkpoint.pth")
    assert checkpoint["step"] == 4
    assert json.loads(json.dumps(checkpoint["config"])) == config
    assert without_seconds(checkpoint["history"]) == without_seconds(history.to_dict("records"))
    assert set(checkpoint["nets"]) == {"generator", "discriminators", "ema", "g_opt", "d_opt"}
    # generator.pth holds the moving average (ema_decay 0.9), which is not the trained weights
    synthesiser = load(folder / "generator.pth")
    assert synthesiser["step"] == 4 and synthesiser["config"] == checkpoint["config"]
    assert_same_tensors(synthesiser["state_dict"], ema_weights(checkpoint))
    assert_same_tensors(synthesiser["state_dict"], checkpoint["synthesiser"])
    generator = checkpoint["nets"]["generator"]
    assert not torch.equal(synthesiser["state_dict"]["embed.weight"], generator["embed.weight"])
    assert list((folder / "logs").glob("events.out.tfevents.*"))
    # the WaveNet's pairs, cached for every training utterance
    features = RunPaths(root, "reduced").parallel_vocoder / "features"
    for utt in mini["splits"].target_train:
        assert (features / f"{utt}-mel.npy").exists() and (features / f"{utt}-audio.npy").exists()
    # a finished run returns its history without training
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "_train_loop", None)
        again = train(root, mini)
    pd.testing.assert_frame_equal(again, history)


def test_resume_is_exact(tmp_path, mini, straight_run):
    """1 + 2 + 1 steps == 4 steps: resuming before the discriminators' first step (their
    optimiser still empty) and between two rows of history.csv."""
    root_a, history_a = straight_run
    root = new_root(tmp_path, mini, "stepwise", features_from=root_a)
    assert train(root, mini, steps=1).empty
    first = train(root, mini, steps=3)
    assert first.attrs["initial_step"] == 1 and first["step"].tolist() == [2]
    (folder_of(root) / "history.csv").write_text("step,loss\n")  # rewritten on resume
    second = train(root, mini)
    assert second.attrs["initial_step"] == 3
    pd.testing.assert_frame_equal(without_seconds(second), without_seconds(history_a))
    a, b = load(folder_of(root_a) / "checkpoint.pth"), load(folder_of(root) / "checkpoint.pth")
    for key in ("nets", "synthesiser", "step", "config", "pending"):
        assert_same_tensors(a[key], b[key])
    assert without_seconds(a["history"]) == without_seconds(b["history"])
    assert_same_tensors(
        load(folder_of(root_a) / "generator.pth"), load(folder_of(root) / "generator.pth")
    )
    pd.testing.assert_frame_equal(
        without_seconds(pd.read_csv(folder_of(root) / "history.csv")), without_seconds(history_a)
    )


def test_changed_settings_are_refused(tmp_path, mini, straight_run):
    root = new_root(tmp_path, mini, "config", features_from=straight_run[0])
    train(root, mini, steps=2)
    with pytest.raises(
        RunConfigError, match=r"parallel\.learning_rate \(stored 0\.0005, now 0\.001\)"
    ) as info:
        train(root, mini, tiny_profile(learning_rate=0.001, model={"dim": 32}))
    assert "generator.dim (stored 16, now 32)" in str(info.value)
    with pytest.raises(RunConfigError, match=r"parallel\.adversarial_start \(stored 2, now 0\)"):
        train(root, mini, tiny_profile(adversarial_start=0))
    # more steps, other checkpoint and log intervals: the same run, resumed
    history = train(
        root, mini, tiny_profile(steps=9, checkpoint_interval=3, log_interval=1), steps=3
    )
    assert history["step"].tolist() == [2, 3]
    # resume=False starts afresh with the new settings
    fresh = train(root, mini, tiny_profile(learning_rate=0.001), steps=1, resume=False)
    assert fresh.attrs["initial_step"] == 0 and fresh.empty
    checkpoint = load(folder_of(root) / "checkpoint.pth")
    assert checkpoint["step"] == 1 and checkpoint["config"]["parallel"]["learning_rate"] == 0.001


def test_load_parallel_vocoder(tmp_path, straight_run):
    root = straight_run[0]
    with pytest.raises(FileNotFoundError, match=r"Chapter 7 \(07_parallel_vocoder\)"):
        load_parallel_vocoder(tmp_path / "empty", tiny_profile(), "clean")
    with pytest.raises(FileNotFoundError, match=r"Chapter 7 .*the finetuned stage"):
        load_parallel_vocoder(root, tiny_profile())  # the default stage is the fine-tuned one
    with pytest.raises(RunConfigError, match=r"generator\.dim \(stored 16, now 32\)"):
        load_parallel_vocoder(root, tiny_profile(model={"dim": 32}), "clean")
    other_features = load_profile(
        "reduced", {**overrides(), "features": {"fmin": 95}}
    )  # other mel bands: a model trained on the old ones would mishear them
    with pytest.raises(RunConfigError, match=r"features\.fmin \(stored 125\.0, now 95\)"):
        load_parallel_vocoder(root, other_features, "clean")
    model = load_parallel_vocoder(root, tiny_profile(), "clean")
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert_same_tensors(model.state_dict(), load(folder_of(root) / "generator.pth")["state_dict"])
    with torch.no_grad():
        assert model(torch.rand(1, 80, 3)).shape == (1, 768)


def test_non_finite_loss_stops_before_saving(tmp_path, mini, straight_run, monkeypatch):
    root = new_root(tmp_path, mini, "nan", features_from=straight_run[0])
    real_step = train_module.training_step

    def nan_step(*args, **kwargs):
        g_total, d_total, parts = real_step(*args, **kwargs)
        return g_total * float("nan"), d_total, parts

    monkeypatch.setattr(train_module, "training_step", nan_step)
    profile = tiny_profile()
    utterances = mini["splits"].target_train
    features = RunPaths(root, "reduced").parallel_vocoder / "features"
    windows = TrainingWindows(features, utterances, 8, 4, profile.parallel.seed)
    with pytest.raises(FloatingPointError, match=r"non-finite at step 1 \(loss nan") as info:
        train(root, mini, profile)
    message = str(info.value)
    assert "no checkpoint yet" in message
    for i, start, _ in windows.plan(0):  # the windows of that step, to find the culprit
        assert f"{utterances[i]} from frame {start}" in message
    folder = folder_of(root)
    assert not (folder / "checkpoint.pth").exists() and not (folder / "generator.pth").exists()

    # after a checkpoint: it is left as it was
    monkeypatch.undo()
    train(root, mini, profile, steps=2)
    before = (folder / "checkpoint.pth").read_bytes()
    monkeypatch.setattr(train_module, "training_step", nan_step)
    with pytest.raises(FloatingPointError, match=r"step 3 .*the checkpoint holds step 2"):
        train(root, mini, profile)
    assert (folder / "checkpoint.pth").read_bytes() == before


@pytest.mark.filterwarnings(
    # Keras' own model.save converts variables with np.array(variable) (NumPy 2 notice)
    "ignore:__array__ implementation:DeprecationWarning",
)
def test_finetuned_stage_starts_from_the_clean_one(tmp_path, mini, straight_run):
    """Fine-tuning on encoder estimates: needs the clean stage and the Proposed encoder,
    starts from the clean stage's networks and average, trains at its own rate."""
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    from synthsep_lib.encoder.model import build_encoder
    from synthsep_lib.pipeline.keras_training import CHECKPOINT_NAME as ENCODER_CHECKPOINT

    clean_root = straight_run[0]
    root = new_root(tmp_path, mini, "finetune", features_from=clean_root)
    paths = RunPaths(root, "reduced")
    # rate 0: the fine-tuned weights stay the clean stage's, so we can see where they start
    profile = tiny_profile(finetune_learning_rate=0.0)
    with pytest.raises(FileNotFoundError, match=r"Chapter 7 \(07_parallel_vocoder\) \(the clean"):
        train(root, mini, profile, stage="finetuned")
    shutil.copytree(folder_of(clean_root), folder_of(root))  # the same data: a valid clean stage
    with pytest.raises(FileNotFoundError, match=r"Chapter 2 \(02_encoder\)"):
        train(root, mini, profile, stage="finetuned")
    # an untrained tiny encoder, saved as Chapter 2 saves it: the pairs only need its estimates
    paths.encoder("proposed").mkdir(parents=True)
    build_encoder("proposed", profile.encoder).save(paths.encoder("proposed") / ENCODER_CHECKPOINT)

    history = train(root, mini, profile, stage="finetuned")
    assert history["step"].tolist() == [2] and history["lr"].tolist() == [0.0]
    assert np.isfinite(history.drop(columns=["step"]).to_numpy(float)).all()
    # the pairs: the encoder's estimate of a training mixture, and the scaled target
    estimates = paths.parallel_vocoder / "estimates"
    rounds_differ = 0
    for utt in mini["splits"].target_train:
        clean = mini["lj"].load_target(utt, profile.features)
        estimates_of_utt = []
        for k in range(TINY["finetune_rounds"]):  # each round mixes in a fresh interferer
            mel = np.load(estimates / f"{utt}-r{k}-mel.npy")
            wave = np.load(estimates / f"{utt}-r{k}-audio.npy")
            assert mel.dtype == wave.dtype == np.float32
            assert mel.shape == (wave.shape[0] // 256, 80) and wave.shape[0] % 256 == 0
            scale = float(wave @ clean) / float(clean @ clean)
            assert 0 < scale < 1.5
            np.testing.assert_allclose(wave, scale * clean, rtol=0, atol=1e-6)
            estimates_of_utt.append(mel)
        rounds_differ += not np.array_equal(*estimates_of_utt)
    # each round draws its interferer from the training noises: now and then the same one
    assert rounds_differ >= len(mini["splits"].target_train) // 2
    assert len(list(estimates.glob("*.npy"))) == 2 * 2 * len(mini["splits"].target_train)

    config = json.loads((folder_of(root, "finetuned") / "config.json").read_text())
    clean_checkpoint = folder_of(root) / "checkpoint.pth"
    assert config["stage"] == "finetuned"
    assert config["data"]["clean_checkpoint_sha1"] == file_sha1(clean_checkpoint)
    clean = load(clean_checkpoint)
    tuned = load(folder_of(root, "finetuned") / "checkpoint.pth")
    assert tuned["step"] == 2
    for net in ("generator", "discriminators"):
        assert_same_tensors(tuned["nets"][net], clean["nets"][net])
    # the average goes on from the clean stage's: two updates towards the same weights
    decay = TINY["ema_decay"]
    for name, start in ema_weights(clean).items():
        weights = clean["nets"]["generator"][name]
        expected = weights + decay**2 * (start - weights)
        torch.testing.assert_close(ema_weights(tuned)[name], expected, rtol=1e-6, atol=1e-7)
    model = load_parallel_vocoder(root, profile)  # the fine-tuned stage by default
    assert_same_tensors(model.state_dict(), ema_weights(tuned))


def test_torchrun_two_processes_equal_one(tmp_path, mini, straight_run):
    """Two gloo processes with half a batch each == one process with the whole batch."""
    ddp_root = new_root(tmp_path, mini, "ddp", features_from=straight_run[0])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "synthsep_lib.pipeline.parallel_vocoder_training",
            "--profile=reduced",
            "--stage=clean",
            f"--run-root={ddp_root}",
            f"--data-root={mini['data_root']}",
            f"--overrides={json.dumps(overrides())}",
            "--device=cpu",
            "--no-progress",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    one_root, one = straight_run
    ddp = pd.read_csv(folder_of(ddp_root) / "history.csv")
    # float32 sums taken in another order (two halves, then their mean) drift by ~1e-5
    for column in ("loss", "mel", "stft", "adversarial", "feature_matching", "discriminator"):
        np.testing.assert_allclose(ddp[column], one[column], rtol=1e-4, err_msg=column)
    a, b = (
        load(folder_of(ddp_root) / "checkpoint.pth"),
        load(folder_of(one_root) / "checkpoint.pth"),
    )
    assert a["step"] == b["step"] == 4
    # Adam's first steps move every weight by about ± the rate, whatever its gradient's
    # size: a gradient that is ~0 (e.g. the phase of a silent bin) takes its sign from
    # round-off. So nearly all weights agree closely, and the others by at most the
    # rate per step.
    steps, rate = a["step"], TINY["learning_rate"]
    for net in ("generator", "discriminators"):
        difference = torch.cat(
            [(value - b["nets"][net][key]).abs().flatten() for key, value in a["nets"][net].items()]
        )
        assert float(difference.max()) <= 2 * steps * rate, net
        assert float((difference > 1e-5).float().mean()) < 0.05, net
    # only rank 0 wrote: one TensorBoard file, no stray temporary files
    assert len(list((folder_of(ddp_root) / "logs").glob("events.out.tfevents.*"))) == 1
    assert not list(folder_of(ddp_root).glob(".*tmp*"))


def test_damaged_generator_file_is_named(tmp_path):
    from test_vocoder_train import damaged_torch_files

    profile = tiny_profile()
    for path, message in damaged_torch_files(tmp_path):
        with pytest.raises(RunConfigError, match=rf"{path}.*{message}.*saved by this book"):
            train_module.load_generator_file(path, profile)
