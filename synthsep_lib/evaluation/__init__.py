"""Evaluation of separated and synthesised speech.

- ``synthsep_lib.evaluation.metrics``: the objective measures (PESQ, STOI, SDR and
  friends, DNSMOS) with the paper's Matlab protocol side by side with the standard one;
- ``synthsep_lib.evaluation.alignment``: estimate and remove a constant delay between a
  reference and an estimate;
- ``synthsep_lib.evaluation.runner`` and ``.tables``: score every method's outputs
  (cached) into Table I and the timing table;
- ``synthsep_lib.evaluation.author_samples``: the authors' published samples;
- ``synthsep_lib.evaluation.listening``: the paired-comparison listening test.

Import the submodules directly; this package file imports nothing heavy.

Used in: Chapter 5 (05_evaluation), Chapter 6 (06_listening_test)
"""
