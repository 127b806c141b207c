"""The paper's listening test: stimuli, sessions, a crash-safe response store, analysis.

The paper (see original_code.md#oc-results) ran two paired-comparison tests, **Proposed vs B1** and
**Proposed vs B2**: each trial plays the outputs of two systems for the same mixture, in
random A/B order, with the mixture as reference, and the listener rates one statement
on a five-point scale. Comparisons beyond the paper (Chapter 7's parallel vocoder) can
be added. The package, in the order a test runs:

- ``design``: the test's design (the answer scale, the two attributes, the paper's and
  the optional comparisons, the columns of a responses table) and the score convention;
- ``stimulus``: loudness measurement (ITU-R BS.1770) and the loudness-normalised
  stimulus files;
- ``session``: one listener's seeded session plan, the crash-safe response store, the
  ipywidgets front end and a seeded simulated listener;
- ``analysis``: the statistics of the answers (the paper's Fig. 3, means with
  intervals, a sign test, agreement between the attributes and per listener) beside
  the paper's numbers;
- ``export``: the stimuli and a configuration for webMUSHRA, to test more listeners.

The package works on plain folders and tables; gathering a run's outputs into stimuli
is :mod:`synthsep_lib.pipeline.listening_test`. Import the submodules directly; this
package file imports nothing.
"""
