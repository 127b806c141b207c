"""WaveNet vocoder training: schedule, windows, moving average, exact resume, atomic
checkpoints, config checks, the trained model, torchrun with two CPU processes
(synthsep_lib.pipeline.vocoder_training).

A tiny WaveNet (4 layers, 8 channels) on the 16-utterance mini corpus of the encoder
tests; a few steps each.
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
from synthsep_lib.pipeline import vocoder_training as train_module  # noqa: E402
from synthsep_lib.pipeline.runs import RunConfigError, RunPaths  # noqa: E402
from synthsep_lib.pipeline.torch_training import TrainingWindows  # noqa: E402
from synthsep_lib.pipeline.vocoder_training import (  # noqa: E402
    load_trained_vocoder,
    noam_learning_rate,
    train_vocoder,
)
from synthsep_lib.vocoder.wavenet import (  # noqa: E402
    WaveNet,
    WaveNetConfig,
    load_r9y9_checkpoint,
    load_r9y9_state_dict,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TINY_MODEL = {
    "layers": 4,
    "stacks": 2,
    "residual_channels": 8,
    "gate_channels": 8,
    "skip_out_channels": 8,
    "input_type": "mulaw-quantize",
    "quantize_channels": 32,
    "out_channels": 32,
}
TINY = {
    "model": TINY_MODEL,
    "batch_size": 4,
    "max_time_steps": 1100,  # 4 frames of 256 samples
    "learning_rate": 1e-3,  # fixed here, whatever the reduced profile is tuned to
    "warmup_steps": 4,
    "ema_decay": 0.9,
    "steps": 6,
    "checkpoint_interval": 2,
    "log_interval": 2,
}


def tiny_profile(model=None, **vocoder):
    settings = {**TINY, **vocoder, "model": {**TINY_MODEL, **(model or {})}}
    return load_profile("reduced", {"data": ENCODER_TEST_DATA, "vocoder": settings})


@pytest.fixture(scope="module")
def mini(vocoder_mini_run):
    return vocoder_mini_run


def new_root(tmp_path: Path, mini, name: str, features_from: Path | None = None) -> Path:
    """A run root with Chapter 1's data (and, if given, already computed features)."""
    root = tmp_path / name
    paths = RunPaths(root, "reduced")
    shutil.copytree(mini["data"], paths.data)
    if features_from is not None:
        src = RunPaths(features_from, "reduced").vocoder / "features"
        shutil.copytree(src, paths.vocoder / "features")
    return root


def train(root, mini, profile=None, **kwargs):
    kwargs.setdefault("progress", False)
    return train_vocoder(profile or tiny_profile(), root, mini["data_root"], **kwargs)


def folder_of(root) -> Path:
    return RunPaths(root, "reduced").vocoder


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, mini):
    """The reference: 6 steps in one call; also the source of the cached features."""
    root = new_root(tmp_path_factory.mktemp("straight"), mini, "runs")
    torch.set_num_threads(1)
    history = train(root, mini)
    return root, history


def without_seconds(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop(columns=["seconds"])


# ---------------------------------------------------------------------------------------
def test_noam_schedule_matches_r9y9():
    # original_code.md#oc-wavenet-training: 2.5e-7 at step 0, 1e-3 at step 3999,
    # 1.118e-4 at step 320000
    assert noam_learning_rate(0, 1e-3, 4000) == pytest.approx(2.5e-7)
    assert noam_learning_rate(3999, 1e-3, 4000) == pytest.approx(1e-3)
    assert noam_learning_rate(320000, 1e-3, 4000) == pytest.approx(1.118e-4, rel=1e-3)
    assert noam_learning_rate(3998, 1e-3, 4000) < noam_learning_rate(3999, 1e-3, 4000)
    assert noam_learning_rate(4000, 1e-3, 4000) < noam_learning_rate(3999, 1e-3, 4000)


def test_features_and_windows(straight_run, mini):
    features = RunPaths(straight_run[0], "reduced").vocoder / "features"
    utts = mini["splits"].target_train
    feat = tiny_profile().features
    # the cache is r9y9's preprocessing: saved audio and the mel of audio[768:]
    from synthsep_lib import audio

    target = mini["lj"].load_target(utts[0], feat)
    np.testing.assert_array_equal(np.load(features / f"{utts[0]}-audio.npy"), target)
    np.testing.assert_array_equal(
        np.load(features / f"{utts[0]}-mel.npy"), audio.mel_spectrogram(target[768:], feat)
    )

    windows = TrainingWindows(features, utts, frames=4, batch_size=6, seed=7)
    batch = windows.batch(3)
    assert batch["audio"].shape == (6, 1024) and batch["mel"].shape == (6, 80, 4)
    assert batch["mask"].all() and batch["share"] == 1.0
    for k, (i, s, f) in enumerate(windows.plan(3)):
        assert f == 4 and 0 <= s < windows.lengths[i] - 4
        saved = np.load(features / f"{utts[i]}-audio.npy")
        mel = np.load(features / f"{utts[i]}-mel.npy")
        np.testing.assert_array_equal(batch["audio"][k].numpy(), saved[256 * s : 256 * s + 1024])
        np.testing.assert_array_equal(batch["mel"][k].numpy(), mel[s : s + 4].T)
    # a pure function of (seed, step); another step or seed gives other windows
    assert_same_tensors(windows.batch(3), batch)
    assert windows.plan(4) != windows.plan(3)
    assert TrainingWindows(features, utts, 4, 6, seed=8).plan(3) != windows.plan(3)
    # every utterance once per epoch
    n = len(utts)
    one_epoch = [
        i for step in range(n) for i, _, _ in TrainingWindows(features, utts, 4, 1, 7).plan(step)
    ]
    assert sorted(one_epoch) == list(range(n))
    # two processes take the two halves of the same batch
    halves = [windows.batch(3, rank, 2) for rank in (0, 1)]
    for key in ("audio", "mel", "mask"):
        assert_same_tensors(torch.cat([h[key] for h in halves]), batch[key])
    assert halves[0]["share"] + halves[1]["share"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        windows.batch(0, 0, 4)


def test_short_utterances_are_padded_and_masked(straight_run, mini):
    features = RunPaths(straight_run[0], "reduced").vocoder / "features"
    utts = mini["splits"].target_train
    lengths = TrainingWindows(features, utts, 1, 1, 0).lengths
    frames = int(np.median(lengths))  # about half the utterances are shorter
    windows = TrainingWindows(features, utts, frames, batch_size=len(utts) // 2 * 2, seed=1)
    batch = windows.batch(0)
    plan = windows.plan(0)
    assert {f for _, _, f in plan} != {frames}
    for k, (i, s, f) in enumerate(plan):
        if lengths[i] <= frames:  # used whole, from its start
            assert s == 0 and f == lengths[i]
            saved = np.load(features / f"{utts[i]}-audio.npy")
            np.testing.assert_array_equal(batch["audio"][k, : 256 * f].numpy(), saved)
        assert batch["mask"][k].sum() == 256 * f
        assert not batch["audio"][k, 256 * f :].any() and not batch["mel"][k, :, f:].any()
    share = windows.batch(0, 0, 2)["share"]
    first_half = sum(256 * f - 1 for _, _, f in plan[: len(plan) // 2])
    assert share == pytest.approx(first_half / sum(256 * f - 1 for _, _, f in plan))


def test_straight_run_artifacts(straight_run, mini):
    root, history = straight_run
    folder = folder_of(root)
    assert history["step"].tolist() == [2, 4, 6]
    assert history["lr"].tolist() == pytest.approx(
        [noam_learning_rate(s - 1, TINY["learning_rate"], 4) for s in (2, 4, 6)]
    )
    assert np.isfinite(history[["loss", "grad_norm", "seconds"]].to_numpy()).all()
    pd.testing.assert_frame_equal(pd.read_csv(folder / "history.csv"), history)
    config = json.loads((folder / "config.json").read_text())
    assert config["wavenet"]["layers"] == 4 and config["vocoder"]["batch_size"] == 4
    assert len(config["data"]["splits_sha1"]) == 40
    latest = load(folder / "checkpoint_latest.pth")
    assert {"state_dict", "optimizer", "global_step", "global_epoch", "global_test_step"} <= set(
        latest
    )
    assert latest["global_step"] == 6 and latest["config"] == config
    assert any(k.endswith("weight_g") for k in latest["state_dict"])
    # the moving average in the published format, loadable as the r9y9 checkpoint is
    model, info = load_r9y9_checkpoint(
        folder / "checkpoint_ema.pth", WaveNetConfig.from_dict(config["wavenet"])
    )
    assert info["global_step"] == 6 and not info["has_optimizer"]
    trained = load_trained_vocoder(root, tiny_profile())
    assert not trained.training
    for a, b in zip(trained.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert list((folder / "logs").glob("events.out.tfevents.*"))
    # a finished run returns its history without training
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "_train_loop", None)
        again = train(root, mini)
    pd.testing.assert_frame_equal(again, history)


def test_moving_average_is_r9y9s(tmp_path, mini, straight_run):
    """shadow ← shadow − (1 − decay)(shadow − θ), starting from the initial weights."""
    root = new_root(tmp_path, mini, "ema", features_from=straight_run[0])
    profile = tiny_profile(ema_decay=0.75, steps=2, checkpoint_interval=1, log_interval=1)
    cfg = WaveNetConfig.from_dict(TINY_MODEL)
    torch.manual_seed(profile.vocoder.seed)
    theta = [WaveNet(cfg).state_dict()]
    shadow = dict(theta[0])
    for step in (1, 2):
        train(root, mini, profile, steps=step)
        model = load_r9y9_state_dict(
            WaveNet(cfg), load(folder_of(root) / "checkpoint_latest.pth")["state_dict"]
        )
        theta.append(model.state_dict())
        shadow = {k: v - (1 - 0.75) * (v - theta[-1][k]) for k, v in shadow.items()}
        ema = load_r9y9_state_dict(
            WaveNet(cfg), load(folder_of(root) / "checkpoint_ema.pth")["state_dict"]
        )
        for key, value in ema.state_dict().items():
            torch.testing.assert_close(value, shadow[key], rtol=0, atol=1e-7)
    assert not torch.equal(theta[1]["first_conv.bias"], theta[2]["first_conv.bias"])


def test_resume_is_exact(tmp_path, mini, straight_run):
    root_a, history_a = straight_run
    root = new_root(tmp_path, mini, "stepwise", features_from=root_a)
    first = train(root, mini, steps=3)  # stops between two log rows
    assert first["step"].tolist() == [2]
    (folder_of(root) / "history.csv").write_text("step,loss\n")  # rewritten on resume
    second = train(root, mini)
    assert second.attrs["initial_step"] == 3
    pd.testing.assert_frame_equal(without_seconds(second), without_seconds(history_a))
    for name in ("checkpoint_latest.pth", "checkpoint_ema.pth"):
        a, b = load(folder_of(root_a) / name), load(folder_of(root) / name)
        for key in ("state_dict", "optimizer", "ema", "global_step", "global_epoch"):
            if key in a:
                assert_same_tensors(a[key], b[key])
    pd.testing.assert_frame_equal(
        without_seconds(pd.read_csv(folder_of(root) / "history.csv")), without_seconds(history_a)
    )


def test_changed_settings_are_refused(tmp_path, mini, straight_run):
    root = new_root(tmp_path, mini, "config", features_from=straight_run[0])
    train(root, mini, steps=2)
    with pytest.raises(
        RunConfigError, match=r"vocoder\.learning_rate \(stored 0\.001, now 0\.002\)"
    ) as info:
        train(root, mini, tiny_profile(learning_rate=0.002, model={"residual_channels": 16}))
    assert "wavenet.residual_channels (stored 8, now 16)" in str(info.value)
    # more steps, other checkpoint and log intervals: the same run, resumed
    history = train(
        root, mini, tiny_profile(steps=9, checkpoint_interval=3, log_interval=1), steps=3
    )
    assert history["step"].tolist() == [2, 3]
    # resume=False starts afresh with the new settings
    fresh = train(root, mini, tiny_profile(learning_rate=0.002), steps=2, resume=False)
    assert fresh.attrs["initial_step"] == 0
    assert (
        load(folder_of(root) / "checkpoint_latest.pth")["config"]["vocoder"]["learning_rate"]
        == 0.002
    )


def test_checkpoint_is_written_atomically(tmp_path, mini, straight_run):
    root = new_root(tmp_path, mini, "atomic", features_from=straight_run[0])
    train(root, mini, steps=2)
    folder = folder_of(root)
    before = {p.name: p.read_bytes() for p in folder.glob("checkpoint_*.pth")}

    def crash(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module.torch, "save", crash)
        with pytest.raises(OSError, match="disk full"):
            train(root, mini, steps=4)
    assert {p.name: p.read_bytes() for p in folder.glob("checkpoint_*.pth")} == before
    assert not list(folder.glob(".*tmp*"))
    assert train(root, mini, steps=4)["step"].tolist() == [2, 4]


def test_gradient_clipping(tmp_path, mini, straight_run):
    root = new_root(tmp_path, mini, "clip", features_from=straight_run[0])
    history = train(root, mini, tiny_profile(clip_grad_norm=1e-3, log_interval=1), steps=1)
    assert history["grad_norm"][0] > 1e-3  # the norm before clipping is logged
    # Adam's first moment after one step is (1 − β1) × the clipped gradient
    state = load(folder_of(root) / "checkpoint_latest.pth")["optimizer"]["state"]
    norm = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(s["exp_avg"]) for s in state.values()])
    )
    assert float(norm) == pytest.approx(0.1 * 1e-3, rel=1e-4)


def test_non_finite_loss_stops_before_saving(tmp_path, mini, straight_run, monkeypatch):
    root = new_root(tmp_path, mini, "nan", features_from=straight_run[0])
    monkeypatch.setattr(WaveNet, "loss", lambda self, y_hat, *a, **k: y_hat.sum() * float("nan"))
    with pytest.raises(FloatingPointError, match=r"became nan at step 1 .*no checkpoint"):
        train(root, mini)
    assert not (folder_of(root) / "checkpoint_latest.pth").exists()


def test_missing_inputs_name_the_chapter(tmp_path, mini):
    with pytest.raises(FileNotFoundError, match=r"Chapter 1 \(01_data_simulation\)"):
        train(tmp_path / "empty", mini)
    with pytest.raises(FileNotFoundError, match=r"Chapter 1 \(01_data_simulation\)"):
        train_vocoder(tiny_profile(), new_root(tmp_path, mini, "nodata"), tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"Chapter 3 \(03_wavenet_vocoder\)"):
        load_trained_vocoder(tmp_path / "empty", tiny_profile())


def test_trained_model_must_match_the_profile(straight_run):
    with pytest.raises(RunConfigError, match=r"wavenet\.layers \(stored 4, now 6\)"):
        load_trained_vocoder(straight_run[0], tiny_profile(model={"layers": 6}))


def test_torchrun_two_processes_equal_one(tmp_path, mini, straight_run):
    """Two gloo processes with half a batch each == one process with the whole batch."""
    overrides = {
        "data": ENCODER_TEST_DATA,
        "vocoder": {**TINY, "model": {**TINY_MODEL, "dropout": 0.0}, "steps": 4},
    }
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
            "synthsep_lib.pipeline.vocoder_training",
            "--profile=reduced",
            f"--run-root={ddp_root}",
            f"--data-root={mini['data_root']}",
            f"--overrides={json.dumps(overrides)}",
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
    one_root = new_root(tmp_path, mini, "one", features_from=straight_run[0])
    one = train(one_root, mini, load_profile("reduced", overrides))
    ddp = pd.read_csv(folder_of(ddp_root) / "history.csv")
    np.testing.assert_allclose(ddp["loss"], one["loss"], rtol=1e-6)
    for name in ("checkpoint_latest.pth", "checkpoint_ema.pth"):
        a, b = load(folder_of(ddp_root) / name), load(folder_of(one_root) / name)
        assert a["global_step"] == b["global_step"] == 4
        for key, value in a["state_dict"].items():
            torch.testing.assert_close(value, b["state_dict"][key], rtol=1e-5, atol=1e-6)
    # only rank 0 wrote: one TensorBoard file, no stray temporary files
    assert len(list((folder_of(ddp_root) / "logs").glob("events.out.tfevents.*"))) == 1
    assert not list(folder_of(ddp_root).glob(".*tmp*"))


def damaged_torch_files(folder: Path) -> list[tuple[Path, str]]:
    """Files that are no checkpoint of this book, and what the error says of each."""
    whole = folder / "whole.pth"
    torch.save({"state_dict": {"w": torch.zeros(64)}}, whole)
    files = {
        "empty.pth": (b"", "cannot be read"),
        "truncated.pth": (whole.read_bytes()[: whole.stat().st_size // 2], "cannot be read"),
        "garbage.pth": (b"not a checkpoint\n" * 4, "cannot be read"),
    }
    out = []
    for name, (data, message) in files.items():
        (folder / name).write_bytes(data)
        out.append((folder / name, message))
    torch.save([1, 2, 3], folder / "list.pth")
    out.append((folder / "list.pth", "holds a list"))
    return out


def test_damaged_vocoder_file_is_named(tmp_path):
    profile = tiny_profile()
    for path, message in damaged_torch_files(tmp_path):
        with pytest.raises(RunConfigError, match=rf"{path}.*{message}.*saved by this book"):
            train_module.load_vocoder_file(path, profile)
