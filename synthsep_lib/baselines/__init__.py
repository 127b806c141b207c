"""Baselines and oracles of the paper: spectrogram resynthesis, oracle masks, B1, B2.

Submodules (import them explicitly; this package imports nothing heavy):

* :mod:`synthsep_lib.baselines.resynthesis` — the authors' inverse STFT and Griffin–Lim,
  mel → linear by pseudo-inverse, length matching (PAPER_FACTS §3.3).
* :mod:`synthsep_lib.baselines.oracles` — the ground-truth rows of Table I: Input,
  IBM-gt, Proposed-res-gt, and ground-truth mel + Griffin–Lim (PAPER_FACTS §5), and the
  runner that writes them to ``runs/<profile>/outputs/<method>/``.

Used in: Chapter 4 (04_baselines), Chapter 5 (05_evaluation).
"""
