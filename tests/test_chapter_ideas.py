"""Every chapter shows the code of its ideas: ``show.source(<name>)`` for each name listed.

Names are dotted paths relative to ``synthsep_lib``. A chapter may reach a name through
any import (``from synthsep_lib.encoder import model`` then ``model.hourglass``); the
test resolves the chapter's imports and compares the objects, so renaming a function in
the library without updating the chapter (or this list) fails here.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect

import nbformat
import pytest
from conftest import ROOT

from synthsep_lib import show

#: What each chapter must show, in any order (it may show more).
REQUIRED = {
    "01_data_simulation": [
        "audio.prepare_lj_audio",
        "audio.pad_for_frames",
        "mixing.simulate_mixture_paper",
        "mixing.mix_and_rescale",
        "mixing.simulate_mixture_snr",
        "audio.mel_spectrogram",
        "audio.lws_analysis_window",
        "audio.normalise_mel",
        "audio.encoder_features",
        "spectrogram_blocks.sample_block_starts",
        "spectrogram_blocks.inference_block_starts",
        "spectrogram_blocks.stitch_blocks",
    ],
    "02_encoder": [
        "encoder.model.recurrent_stream",
        "encoder.model.residual_unit",
        "encoder.model.hourglass",
        "encoder.model.build_encoder",
        "encoder.loss.perceptual_loss",
        "encoder.loss.encoder_errors",
    ],
    "03_wavenet_vocoder": [
        "vocoder.wavenet.ResidualLayer.forward",
        "vocoder.wavenet.upsample_layers",
        "vocoder.wavenet.WaveNet.upsample",
        "vocoder.wavenet.WaveNet.forward_upsampled",
        "vocoder.logistic_mixture.sample_from_discretized_mix_logistic",
        "vocoder.wavenet._Stepper.network",
    ],
    "04_baselines": [
        "baselines.oracles.ideal_binary_mask",
        "baselines.resynthesis.griffin_lim_paper",
        "baselines.denoising_wavenet.residual_block",
        "separation.separate_proposed",
    ],
    "05_evaluation": [
        "evaluation.metrics.pesq_raw",
        "evaluation.metrics.sdr",
        "evaluation.metrics._paper_sdr",
    ],
    "06_listening_test": ["evaluation.listening.analysis.sign_test"],
    "07_parallel_vocoder": [
        "vocoder.parallel.ConvNeXtBlock.forward",
        "vocoder.parallel.MagnitudePrior.forward",
        "vocoder.parallel.ISTFTHead.spectrum",
        "vocoder.parallel.overlap_add_istft",
        "vocoder.adversarial.training_step",
        "pipeline.estimate_pairs.build_estimate_pairs",
    ],
    "08_harder_conditions": [
        "harder_mixing.simulate_mixture_harder",
        "harder_mixing.room_impulse_responses",
        "harder_mixing.reverberate",
        "pipeline.long_audio.chunk_layout",
    ],
}

CHAPTERS = sorted(REQUIRED)


def resolve(dotted: str):
    """The object at ``synthsep_lib.<dotted>``: submodules imported, then attributes."""
    obj, path = importlib.import_module("synthsep_lib"), "synthsep_lib"
    for part in dotted.split("."):
        path = f"{path}.{part}"
        if hasattr(obj, "__path__") and importlib.util.find_spec(path) is not None:
            obj = importlib.import_module(path)
        else:
            obj = getattr(obj, part)
    return obj


def _code_cells(stem: str) -> list[str]:
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def _aliases(trees) -> dict[str, str]:
    """Local name -> dotted path relative to ``synthsep_lib``, from the chapter's imports."""
    names = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("synthsep_lib"):
                package = node.module.removeprefix("synthsep_lib").lstrip(".")
                for alias in node.names:
                    names[alias.asname or alias.name] = ".".join(
                        filter(None, [package, alias.name])
                    )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("synthsep_lib.") and alias.asname:
                        names[alias.asname] = alias.name.removeprefix("synthsep_lib.")
    return names


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def shown_names(stem: str) -> list[str]:
    """Dotted names (relative to ``synthsep_lib``) the chapter passes to ``show.source``."""
    trees = [ast.parse(source) for source in _code_cells(stem)]
    aliases = _aliases(trees)
    shown = []
    for tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            function = _dotted(node.func)
            if function is None:
                continue
            head, _, rest = function.partition(".")
            if ".".join(filter(None, [aliases.get(head, head), rest])) != "show.source":
                continue
            argument = _dotted(node.args[0])
            assert argument is not None, (
                f"{stem}: show.source needs a dotted name, got {ast.unparse(node)}"
            )
            head, _, rest = argument.partition(".")
            assert head in aliases, f"{stem}: {argument!r} is not imported from synthsep_lib"
            shown.append(".".join(filter(None, [aliases[head], rest])))
    return shown


def test_every_chapter_has_an_entry():
    stems = sorted(path.stem for path in (ROOT / "notebooks").glob("*.ipynb"))
    assert stems == CHAPTERS


@pytest.mark.parametrize("stem", CHAPTERS)
def test_required_names_exist_and_can_be_shown(stem):
    for name in REQUIRED[stem]:
        try:
            obj = resolve(name)
        except AttributeError as error:
            pytest.fail(f"{stem} must show synthsep_lib.{name}, which does not exist ({error})")
        code = show.source(obj).code
        assert code.strip(), name


@pytest.mark.parametrize("stem", CHAPTERS)
def test_chapter_shows_its_ideas(stem):
    shown = shown_names(stem)
    shown_objects = [inspect.unwrap(resolve(name)) for name in shown]
    missing = [
        name
        for name in REQUIRED[stem]
        if name not in shown
        and not any(inspect.unwrap(resolve(name)) is obj for obj in shown_objects)
    ]
    assert not missing, f"{stem} does not show.source: {missing}"
