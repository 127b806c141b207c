"""The ``synthsep`` command line (synthsep_lib.cli): help, version, method choice, every
bad input reported as one line before any model is loaded, outputs in place and whole.

The models are replaced by a cheap linear separator (``load_separator`` patched) except in
:func:`test_separate_with_the_book_s_run_folder`, which runs the models the chapters
trained (``-m chapters``); :func:`check_round_trip_with_run` is that test for any run
folder, e.g. a local one::

    python -c "import sys; sys.path.insert(0, 'tests'); import test_cli; \\
        test_cli.check_round_trip_with_run('runs', '/tmp/synthsep_check')"
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, version
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from test_long_audio import KINDS, expected_mono, speechlike, write_kind

from synthsep_lib import cli
from synthsep_lib.config import load_profile
from synthsep_lib.pipeline.runs import RunPaths
from synthsep_lib.pipeline.separators import (
    CHECKPOINT_ROLES,
    SEPARATION_METHODS,
    Separator,
    available_methods,
    checkpoint_files,
)

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "synthsep_lib"]


def run_command(*args: str) -> subprocess.CompletedProcess:
    """``python -m synthsep_lib ARGS`` in a fresh process (what the ``synthsep`` script runs)."""
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, cwd=ROOT, timeout=600)


# ------------------------------------------------------------------ help and version


def test_help_describes_the_command_with_an_example():
    done = run_command("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: synthsep ")
    assert "separate" in done.stdout and "Speech separation by synthesis" in done.stdout
    assert "synthsep separate noisy.wav --out separated/" in done.stdout


def test_separate_help_states_the_conventions():
    done = run_command("separate", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # help text is wrapped
    for phrase in (
        "usage: synthsep separate",
        "noisy.flac -> DIR/noisy.wav",
        "22050 Hz mono 32-bit float WAV",
        "resampled to 22050 Hz",
        "averaged to mono",
        "synthsep separate noisy.wav --out separated/",
        "--checkpoint ROLE=PATH",
        "--quiet",
    ):
        assert phrase in text, phrase
    for name in [*SEPARATION_METHODS, *CHECKPOINT_ROLES]:
        assert f"\n  {name} " in done.stdout, name


def test_version_is_the_installed_package_s():
    done = run_command("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"synthsep {version('synthsep-lib')}"


def test_the_synthsep_script_runs_main():
    (script,) = entry_points(group="console_scripts", name="synthsep")
    assert script.load() is cli.main


def test_main_returns_the_status_instead_of_exiting(capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["separate"]) == 2  # argparse: INPUT and --out missing
    assert "the following arguments are required" in capsys.readouterr().err


# ------------------------------------------------------------ with a cheap separator


def fake_run(tmp_path, roles=tuple(CHECKPOINT_ROLES)) -> RunPaths:
    """A run folder holding (empty) checkpoint files for ``roles``."""
    paths = RunPaths(tmp_path / "runs", "reduced")
    for role in roles:
        file = CHECKPOINT_ROLES[role][0](paths)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"")
    return paths


@pytest.fixture
def loads(monkeypatch):
    """Replaces the model loader by a Separator halving its input; lists the calls."""
    calls = []
    features = load_profile("reduced").features

    def load_separator(method, paths, profile=None, checkpoints=None, **kwargs):
        calls.append({"method": method, "paths": paths, "checkpoints": dict(checkpoints or {})})
        return Separator(
            method=method,
            description="halves",
            sample_rate=features.sample_rate,
            features=features,
            separate_padded=lambda x: 0.5 * x,
            checkpoints={},
        )

    monkeypatch.setattr(cli, "load_separator", load_separator)
    return calls


def separate(tmp_path, *args: str) -> int:
    return cli.main(["separate", *map(str, args), "--run-root", str(tmp_path / "runs")])


def test_every_kind_of_file_is_separated_into_the_output_folder(tmp_path, loads, capsys):
    fake_run(tmp_path)
    inputs = [write_kind(tmp_path, kind, name=kind) for kind in KINDS]
    out = tmp_path / "separated"
    assert separate(tmp_path, *inputs, "--out", out, "--chunk-seconds", "1") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{k}.wav" for k in KINDS)
    for path in inputs:
        estimate, rate = sf.read(out / f"{path.stem}.wav", dtype="float32")
        assert rate == 22050 and sf.info(out / f"{path.stem}.wav").subtype == "FLOAT"
        np.testing.assert_allclose(estimate, 0.5 * expected_mono(path), rtol=1e-5, atol=1e-6)
    assert [call["method"] for call in loads] == ["proposed-parallel-ft"]  # loaded once
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("synthsep: method proposed-parallel-ft: ")
    stereo = [p for p, k in zip(inputs, KINDS, strict=True) if KINDS[k][3] == 2]
    assert [line for line in err if "averaged to mono" in line] == [
        f"synthsep: {p}: 2 channels averaged to mono" for p in stereo
    ]
    assert sum(line.startswith("synthsep: wrote ") for line in err) == len(inputs)


def test_quiet_leaves_only_the_notes(tmp_path, loads, capsys):
    fake_run(tmp_path)
    path = write_kind(tmp_path, "flac-44k-stereo")
    assert separate(tmp_path, path, "--out", tmp_path / "o", "--quiet") == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "method" in err[0] and "averaged to mono" in err[1]


@pytest.mark.parametrize(
    "roles, method",
    [
        (tuple(CHECKPOINT_ROLES), "proposed-parallel-ft"),
        (("encoder", "parallel-clean", "wavenet", "denoiser"), "proposed-parallel"),
        (("encoder", "wavenet", "denoiser", "b1-encoder"), "proposed"),
        (("denoiser", "b1-encoder", "parallel-finetuned"), "b2"),
        (("b1-encoder",), "b1"),
    ],
)
def test_the_default_method_is_the_best_one_available(tmp_path, loads, capsys, roles, method):
    paths = fake_run(tmp_path, roles)
    assert available_methods(paths)[0] == method
    path = write_kind(tmp_path, "wav-float-22k-mono")
    assert separate(tmp_path, path, "--out", tmp_path / "o", "-q") == 0
    assert [call["method"] for call in loads] == [method]
    assert capsys.readouterr().err.startswith(f"synthsep: method {method}: ")


def test_a_method_and_checkpoints_can_be_chosen(tmp_path, loads):
    fake_run(tmp_path)
    path = write_kind(tmp_path, "wav-float-22k-mono")
    assert separate(tmp_path, path, "--out", tmp_path / "o", "--method", "b1", "-q") == 0
    own = tmp_path / "my_denoiser.keras"
    own.write_bytes(b"")
    # no run folder at all: the given file is enough, and picks the method that uses it
    args = ["separate", str(path), "--out", str(tmp_path / "o"), "--run-root", "nowhere"]
    assert cli.main([*args, "--checkpoint", f"denoiser={own}", "-q"]) == 0
    assert [(c["method"], c["checkpoints"]) for c in loads] == [
        ("b1", {}),
        ("b2", {"denoiser": own}),
    ]


def test_an_existing_output_is_replaced(tmp_path, loads):
    fake_run(tmp_path)
    path = write_kind(tmp_path, "wav-float-22k-mono")
    out = tmp_path / "o"
    out.mkdir()
    (out / "noisy.wav").write_bytes(b"old")
    assert separate(tmp_path, path, "--out", out, "-q") == 0
    assert sf.info(out / "noisy.wav").samplerate == 22050
    assert os.stat(out / "noisy.wav").st_mode & 0o044  # readable like any new file


def assert_one_error_line(capsys, *phrases: str, after: str = "") -> str:
    """stderr is one error line with ``phrases`` (after a line starting ``after``, if given)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    if after:
        assert lines[0].startswith(after), err
        lines = lines[1:]
    assert len(lines) == 1 and lines[0].startswith("synthsep: error: "), err
    assert "Traceback" not in err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def bad_inputs(tmp_path) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """Case → (arguments after the inputs' folder is set up, phrases the error has)."""
    good = write_kind(tmp_path, "wav-float-22k-mono")
    text = tmp_path / "notes.flac"
    text.write_text("not audio")
    zeros = tmp_path / "zeros.wav"
    sf.write(zeros, np.zeros(1000), 16000)
    afile = tmp_path / "afile"
    afile.write_text("")
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "noisy.flac", speechlike(1.0, 16000, 1), 16000)
    out = str(tmp_path / "out")
    return {
        "missing": ([str(tmp_path / "gone.wav"), "--out", out], ("gone.wav", "no such file")),
        "unreadable": ([str(text), "--out", out], ("notes.flac", "not an audio file")),
        "silent": ([str(good), str(zeros), "--out", out], ("zeros.wav", "silent")),
        "out is a file": ([str(good), "--out", str(afile)], ("afile", "not a folder")),
        "out under a file": ([str(good), "--out", str(afile / "sub")], ("cannot write there",)),
        "unknown role": (
            [str(good), "--out", out, "--checkpoint", "vocoder=x.pth"],
            ("unknown role 'vocoder'", "encoder, b1-encoder"),
        ),
        "role without path": ([str(good), "--out", out, "--checkpoint", "encoder"], ("ROLE=PATH",)),
        "role the method does not use": (
            [str(good), "--out", out, "--method", "b2", "--checkpoint", "encoder=x.keras"],
            ("'b2' uses checkpoint roles ['denoiser']",),
        ),
        "missing given checkpoint": (
            [str(good), "--out", out, "--checkpoint", "denoiser=x.keras"],
            ("x.keras is missing (given)",),
        ),
        "same output twice": (
            [str(good), str(other / "noisy.flac"), "--out", out],
            ("would both be written to", "noisy.wav"),
        ),
        "output is the input": ([str(good), "--out", str(tmp_path)], ("overwrite an input",)),
        "overlap too long": (
            [str(good), "--out", out, "--chunk-seconds", "2", "--overlap-seconds", "1.5"],
            ("--overlap-seconds 1.5",),
        ),
    }


def test_every_bad_input_is_one_line_and_loads_nothing(tmp_path, loads, capsys):
    fake_run(tmp_path)
    cases = bad_inputs(tmp_path)
    for case, (args, phrases) in cases.items():
        assert separate(tmp_path, *args) == 1, case
        assert_one_error_line(capsys, *phrases)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), case
    assert loads == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_a_read_only_output_folder_is_refused(tmp_path, loads, capsys):
    fake_run(tmp_path)
    good = write_kind(tmp_path, "wav-float-22k-mono")
    out = tmp_path / "ro"
    out.mkdir(mode=0o555)
    assert separate(tmp_path, good, "--out", out) == 1
    assert_one_error_line(capsys, str(out), "cannot write there")
    assert loads == []


def test_checkpoint_roles_are_the_files_the_trainers_write(tmp_path):
    from synthsep_lib.pipeline import keras_training, vocoder_training
    from synthsep_lib.pipeline import parallel_vocoder_training as parallel

    paths = RunPaths(tmp_path, "reduced")
    keras_name = keras_training.CHECKPOINT_NAME
    expected = {
        "encoder": paths.encoder("proposed") / keras_name,
        "b1-encoder": paths.encoder("b1") / keras_name,
        "wavenet": paths.vocoder / vocoder_training.EMA_CHECKPOINT_NAME,
        "parallel-clean": parallel.stage_folder(paths, "clean") / parallel.GENERATOR_NAME,
        "parallel-finetuned": parallel.stage_folder(paths, "finetuned") / parallel.GENERATOR_NAME,
        "denoiser": paths.baseline("b2") / keras_name,
    }
    assert {role: where(paths) for role, (where, _) in CHECKPOINT_ROLES.items()} == expected


def test_the_paper_profile_decodes_with_the_published_wavenet(tmp_path):
    from synthsep_lib.pipeline import pretrained_wavenet, vocoder_training

    paper = RunPaths(tmp_path, "paper")
    published = paper.published_wavenet / pretrained_wavenet.CHECKPOINT_NAME
    assert CHECKPOINT_ROLES["wavenet"][0](paper) == published
    trained = paper.vocoder / vocoder_training.EMA_CHECKPOINT_NAME
    for file in (published, trained):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"")
    assert checkpoint_files(paper, "proposed", {"encoder": trained})["wavenet"] == published


def test_missing_models_name_the_chapters_that_train_them(tmp_path, loads, capsys):
    good = write_kind(tmp_path, "wav-float-22k-mono")
    out = tmp_path / "out"
    # no run folder at all, no method given: every method and the chapters it needs
    assert separate(tmp_path, good, "--out", out) == 1
    line = assert_one_error_line(capsys, "no trained models in", "does not exist")
    for method in SEPARATION_METHODS:
        assert f"{method}: Chapter " in line, method
    assert "b2: Chapter 4 (04_baselines)" in line
    assert "proposed: Chapter 2 (02_encoder) and Chapter 3 (03_wavenet_vocoder)" in line
    # a run folder with only B1's encoder, B2 asked for: the missing file and its chapter
    fake_run(tmp_path, ("b1-encoder",))
    assert separate(tmp_path, good, "--out", out, "--method", "b2") == 1
    assert_one_error_line(capsys, "denoiser checkpoint", "checkpoint.keras", "Chapter 4")
    assert loads == [] and not out.exists()


def test_a_model_that_fails_to_load_is_one_line(tmp_path, monkeypatch, capsys):
    paths = fake_run(tmp_path)
    good = write_kind(tmp_path, "wav-float-22k-mono")

    def broken(*args, **kwargs):
        raise OSError("truncated zip file\nmore detail")

    monkeypatch.setattr(cli, "load_separator", broken)
    assert separate(tmp_path, good, "--out", tmp_path / "out", "--method", "b2") == 1
    denoiser = CHECKPOINT_ROLES["denoiser"][0](paths)
    assert_one_error_line(
        capsys,
        f"cannot load the b2 models ({denoiser})",
        "truncated zip file",
        after="synthsep: method b2: ",  # said before the (slow) loading starts
    )
    assert not any((tmp_path / "out").iterdir())


def test_an_interruption_leaves_no_output(tmp_path, monkeypatch, capsys):
    fake_run(tmp_path)
    good = write_kind(tmp_path, "wav-float-22k-mono", seconds=5.0)

    class Interrupted:
        sample_rate = 22050

        def __init__(self):
            self.calls = 0

        def __call__(self, chunk):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return chunk

    monkeypatch.setattr(cli, "load_separator", lambda *a, **k: Interrupted())
    out = tmp_path / "out"
    assert separate(tmp_path, good, "--out", out, "--chunk-seconds", "1", "-q") == 130
    assert capsys.readouterr().err.splitlines()[-1] == "synthsep: interrupted"
    assert list(out.iterdir()) == []


def test_a_bad_input_in_a_real_process_is_one_line_without_traceback(tmp_path):
    done = run_command("separate", str(tmp_path / "gone.flac"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert done.stderr == f"synthsep: error: {tmp_path / 'gone.flac'}: no such file\n"
    assert done.stdout == "" and not (tmp_path / "o").exists()


# ------------------------------------------------------------- with trained models


def check_round_trip_with_run(run_root, work, profile: str = "reduced") -> Path:
    """``synthsep separate`` in a fresh process, default method, on one test mixture of the
    run written as a 16 kHz FLAC; checks the output and returns its path."""
    run_root, work = Path(run_root).resolve(), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(run_root, profile)
    mixture, rate = sf.read(paths.test_wav(0, "mixture"), dtype="float32")
    flac = work / "mixture_16k.flac"
    sf.write(flac, soxr.resample(mixture, rate, 16000), 16000, subtype="PCM_16")
    out = work / "separated"
    args = ["separate", str(flac), "--out", str(out), "--run-root", str(run_root), "-q"]
    done = run_command(*args, "--profile", profile)
    assert done.returncode == 0, done.stderr
    best = available_methods(paths)[0]
    assert done.stderr.startswith(f"synthsep: method {best}: "), done.stderr
    assert "Traceback" not in done.stderr
    estimate, out_rate = sf.read(out / "mixture_16k.wav", dtype="float32")
    assert out_rate == 22050
    assert estimate.shape == (soxr.resample(sf.read(flac)[0], 16000, 22050).shape[0],)
    assert np.isfinite(estimate).all()
    assert np.sqrt(np.mean(estimate**2)) > 1e-3 * np.sqrt(np.mean(mixture**2))
    return out / "mixture_16k.wav"


@pytest.mark.chapters
def test_separate_with_the_book_s_run_folder(book_build, tmp_path):
    if book_build["status"] != 0:
        pytest.skip("the chapters did not all run")
    check_round_trip_with_run(book_build["runs"], tmp_path)
