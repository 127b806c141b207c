"""The stimuli of the listening test for an online tool (webMUSHRA)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ...files import atomic_path, write_text_atomic
from .design import COMPARISONS, REFERENCE_ROLE, compared_systems
from .stimulus import stimulus_path

__all__ = ["export_webmushra"]


def export_webmushra(
    stimuli: pd.DataFrame,
    stimuli_dir: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    systems: Sequence[str] = compared_systems(COMPARISONS),
    test_id: str = "synthsep",
    audio_root: str | None = None,
) -> Path:
    """Write the stimuli and a webMUSHRA configuration (one MUSHRA page per test pair).

    Layout: ``<dest>/trial_<pair>/reference.wav`` (the mixture, as in the paper's test)
    and ``<dest>/trial_<pair>/<system>.wav``, plus ``<dest>/<test_id>.yaml``. To use it,
    copy the trial folders to ``<webMUSHRA>/<audio_root>/`` and the YAML file to
    ``<webMUSHRA>/configs/``, then open ``?config=<test_id>.yaml``. The pages are
    presented in random order; webMUSHRA hides the reference among the conditions too,
    and its low-pass anchors are switched off (they suit a clean reference, not a
    mixture). Other tools (e.g. BeaqleJS, the Web Audio Evaluation Tool) can read the
    same folders.

    Parameters
    ----------
    stimuli : pandas.DataFrame
        From :func:`.stimulus.read_stimuli`.
    stimuli_dir : path-like
        Folder holding the stimuli files.
    dest : path-like
        Export folder.
    systems : sequence of str
        Conditions on every page (default those of the paper's comparisons); pairs
        lacking one are skipped.
    test_id : str
        webMUSHRA ``testId`` and file name of the configuration.
    audio_root : str, optional
        Audio folder as webMUSHRA sees it; default ``configs/resources/audio/<test_id>``.

    Returns
    -------
    pathlib.Path
        The YAML configuration.
    """
    import yaml

    dest = Path(dest)
    audio_root = audio_root or f"configs/resources/audio/{test_id}"
    roles = stimuli.groupby("pair")["role"].agg(set)
    pairs = [int(p) for p, have in roles.items() if {REFERENCE_ROLE, *systems} <= have]
    if not pairs:
        raise ValueError(f"no test pair has stimuli of the mixture and all of {list(systems)}")
    pages = []
    for pair in pairs:
        trial = f"trial_{pair:03d}"
        files = {"reference": REFERENCE_ROLE, **{s: s for s in systems}}
        for name, role in files.items():
            with atomic_path(dest / trial / f"{name}.wav") as tmp:
                shutil.copyfile(stimulus_path(stimuli_dir, pair, role), tmp)
        pages.append(
            {
                "type": "mushra",
                "id": trial,
                "name": f"Test mixture {pair}",
                "content": (
                    "The reference is the noisy mixture. Rate how natural and clean the "
                    "speech in each condition sounds."
                ),
                "showWaveform": False,
                "enableLooping": True,
                "reference": f"{audio_root}/{trial}/reference.wav",
                "createAnchor35": False,
                "createAnchor70": False,
                "stimuli": {
                    f"C{k}": f"{audio_root}/{trial}/{s}.wav" for k, s in enumerate(systems, 1)
                },
            }
        )
    config = {
        "testname": "SynthSep: speech separated by synthesis",
        "testId": test_id,
        "bufferSize": 2048,
        "stopOnErrors": True,
        "showButtonPreviousPage": True,
        "remoteService": "service/write.php",
        "pages": [
            ["random", *pages],
            {
                "type": "finish",
                "name": "Thank you",
                "content": "Thank you for taking part.",
                "showResults": True,
                "writeResults": True,
            },
        ],
    }
    conditions = ", ".join(f"C{k} = {s}" for k, s in enumerate(systems, 1))
    header = f"# webMUSHRA configuration written by synthsep_lib ({conditions}).\n"
    return write_text_atomic(
        dest / f"{test_id}.yaml", header + yaml.safe_dump(config, sort_keys=False)
    )
