"""Baselines and oracles of the paper: spectrogram resynthesis, oracle masks, B1, B2.

Submodules (import them explicitly; this package imports nothing heavy):

* :mod:`synthsep_lib.baselines.resynthesis` — the authors' inverse STFT and Griffin–Lim,
  mel → linear by pseudo-inverse, length matching (original_code.md#oc-resynthesis).
* :mod:`synthsep_lib.baselines.oracles` — the ground-truth rows of Table I: IBM-gt,
  Proposed-res-gt (and with the true mel), ground-truth mel + Griffin–Lim
  (original_code.md#oc-b1-oracles).
* :mod:`synthsep_lib.baselines.b1` — B1 and B1-gt: the linear-spectrum encoder's
  estimate turned into audio by Griffin–Lim or with the target's phase.
* :mod:`synthsep_lib.baselines.denoising_wavenet` — B2, the authors' speech-denoising
  WaveNet (Keras, original_code.md#oc-b2-architecture): the network and whole-file
  denoising aligned with the input.

What runs them over the test set and trains B2 is in :mod:`synthsep_lib.pipeline`
(``signal_methods``, ``denoising``, ``denoiser_training``).
"""
