"""The numbers the paper publishes, in one place.

Liu, Jackson and Wang, "A Speech Synthesis Approach for High Quality Speech Separation
and Generation", IEEE Signal Processing Letters 26(12), 2019. Each constant says where the
paper gives it; the few the paper does not print (model sizes) are counted from the
layer definitions of the authors' code (the book's notes on the original code,
``book/original_code.md``). Chapters and library code import these names; nothing else
in the book types these numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "TABLE_ONE",
    "TEST_FILES",
    "PROCESSING_HOURS",
    "LJ_MEAN_SECONDS",
    "ENCODER_ERRORS",
    "ENCODER_ERROR_FILES",
    "ENCODER_PARAMETERS",
    "WAVENET_PARAMETERS",
    "B2_PARAMETERS",
    "LISTENERS",
    "PAIRS_PER_LISTENER",
    "LISTENING",
]

# --- Objective results (paper, Table I) -----------------------------------------------

#: Table I: averages over the first 100 test mixtures. PESQ is the raw P.862 score of
#: the authors' Matlab implementation; SDR is their 257-tap projection and was not
#: reported (NA) for the synthesised outputs.
TABLE_ONE = pd.DataFrame(
    {
        "PESQ": [1.02, 3.62, 2.61, 3.26, 2.84, 2.30, 2.75],
        "STOI": [0.85, 0.95, 0.88, 0.94, 0.91, 0.85, 0.97],
        "SDR": [5.34, 15.36, np.nan, 11.66, np.nan, 5.35, 13.55],
    },
    index=pd.Index(
        ["Input", "Proposed-res-gt", "Proposed", "B1-gt", "B1", "B2", "IBM-gt"], name="system"
    ),
)

#: Test mixtures behind Table I and behind the processing times (paper, Table I).
TEST_FILES = 100

# --- Processing time (paper, text after Table I) --------------------------------------

#: Hours to process the 100 test mixtures (1-10 s each): the sample-by-sample WaveNet
#: makes Proposed by far the slowest. The paper does not state the hardware.
PROCESSING_HOURS = {"Proposed": 55.0, "B1": 0.5, "B2": 3.0}

#: Mean duration of an LJSpeech clip in seconds (the corpus README, not the paper): it
#: stands in for the unknown durations of the paper's 100 test files when a measured
#: real-time factor is projected onto them.
LJ_MEAN_SECONDS = 6.57

# --- Encoder errors (paper, Eq. (2) and the text below it) ----------------------------

#: e1 and e2 of the encoders' estimates on the normalised features (mel for Proposed,
#: the 512-bin linear spectrum for B1), as fractions (the paper prints 2.8 %, 0.3 %,
#: 6.8 % and 0.6 %). Keys: encoder variant of :mod:`synthsep_lib.encoder.model`.
ENCODER_ERRORS = {
    "proposed": {"e1": 0.028, "e2": 0.003},
    "b1": {"e1": 0.068, "e2": 0.006},
}

#: Test sequences behind :data:`ENCODER_ERRORS` (paper, text below Eq. (2)).
ENCODER_ERROR_FILES = 500

# --- Model sizes (not in the paper: counted from the authors' layer definitions) ------

#: Parameters of the two encoders (BatchNorm counted with its 2 untrained numbers per
#: channel). Keys: encoder variant.
ENCODER_PARAMETERS = {"proposed": 4_033_453, "b1": 4_670_789}

#: Parameters of the pretrained LJSpeech WaveNet the authors used (r9y9's checkpoint).
WAVENET_PARAMETERS = 24_737_396

#: Parameters of B2, the authors' modified speech-denoising WaveNet.
B2_PARAMETERS = 6_342_657

# --- Listening test (paper, Fig. 3 and its text) ---------------------------------------

#: Listeners per paired comparison (Proposed vs B1, Proposed vs B2).
LISTENERS = 16

#: Random test pairs each listener rated per comparison and attribute.
PAIRS_PER_LISTENER = 20

#: What the paper reports per comparison: mean scores (1-5) of the two attributes, their
#: Pearson correlation and mean absolute difference, and the percentages of the
#: naturalness answers "Better" and "Slightly better" (Fig. 3).
LISTENING = pd.DataFrame(
    {
        "naturalness mean": [4.29, 4.49],
        "preference mean": [4.28, 4.18],
        "pearson r": [0.51, 0.38],
        "mean abs diff": [0.48, 0.68],
        "naturalness % Better": [47.0, 48.0],
        "naturalness % Slightly better": [41.0, 34.0],
    },
    index=pd.Index(["Proposed vs B1", "Proposed vs B2"], name="comparison"),
)
