"""Evaluation of separated and synthesised speech.

``synthsep_lib.evaluation.metrics`` holds the objective measures (PESQ, STOI, SDR and
friends, DNSMOS) with the paper's Matlab protocol side by side with the standard one;
``synthsep_lib.evaluation.alignment`` estimates and removes a constant delay between a
reference and an estimate. Import the submodules directly; this package file imports
nothing heavy.

Used in: Chapter 5 (05_evaluation)
"""
