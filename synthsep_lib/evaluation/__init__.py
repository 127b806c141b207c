"""Evaluation of separated and synthesised speech.

- ``synthsep_lib.evaluation.metrics``: the objective measures (PESQ, STOI, SDR and
  friends, DNSMOS) with the paper's Matlab protocol side by side with the standard one;
- ``synthsep_lib.evaluation.alignment``: estimate and remove a constant delay between a
  reference and an estimate;
- ``synthsep_lib.evaluation.paper_numbers``: the numbers the paper publishes (Table I,
  processing times, encoder errors, model sizes, listening test), in one place;
- ``synthsep_lib.evaluation.tables``: Table I and the timing table from the scores
  (which :mod:`synthsep_lib.pipeline.scoring` computes, cached, over every method's
  outputs);
- ``synthsep_lib.evaluation.listening``: the paired-comparison listening test.

Import the submodules directly; this package file imports nothing heavy.
"""
