"""Baselines and oracles of the paper: spectrogram resynthesis, oracle masks, B1, B2.

Submodules (import them explicitly; this package imports nothing heavy):

* :mod:`synthsep_lib.baselines.resynthesis` — the authors' inverse STFT and Griffin–Lim,
  mel → linear by pseudo-inverse, length matching (PAPER_FACTS §3.3).
* :mod:`synthsep_lib.baselines.oracles` — the ground-truth rows of Table I: IBM-gt,
  Proposed-res-gt (and with the true mel), ground-truth mel + Griffin–Lim (PAPER_FACTS §5).
* :mod:`synthsep_lib.baselines.linear` — B1 and B1-gt: the linear-spectrum encoder's
  estimate turned into audio by Griffin–Lim or with the target's phase.
* :mod:`synthsep_lib.baselines.signal_methods` — the registry of every signal-processing
  method (input, oracles, B1, B1-gt) and the one runner that writes them to
  ``runs/<profile>/outputs/<method>/`` with ``timing.csv``.
* :mod:`synthsep_lib.baselines.denoising_wavenet` — B2, the authors' speech-denoising
  WaveNet (Keras, PAPER_FACTS §7): the network, whole-file denoising aligned with the
  input, and the runner that writes ``runs/<profile>/outputs/b2/``.
* :mod:`synthsep_lib.baselines.denoising_wavenet_train` — B2's training: waveform
  segments of mixtures simulated on the fly, resumable training with the paper's schedule.

Before Keras is first imported (by the B2 modules) this file quiets TensorFlow's C++ log
(``TF_CPP_MIN_LOG_LEVEL=3``) and selects the TensorFlow backend, unless the environment
already says otherwise, as :mod:`synthsep_lib.encoder` does.

Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
