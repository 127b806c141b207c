"""The pipeline that runs the book's ideas: run folders, downloads, trainers, test-set runs.

The ideas themselves (features, mixing, models, losses, decoders, metrics) live in the
rest of the library and import nothing from here; this package puts them to work:

- ``runs``: the run folder ``runs/<profile>/`` and its contracts (paths, stored
  configurations, ``timing.csv``);
- ``downloads``, ``pretrained_wavenet``, ``author_samples``: verified downloads of the
  corpora, the published WaveNet and the authors' samples;
- ``encoder_feed``, ``encoder_training``, ``encoder_inference``: the encoder's training
  data, resumable training and test-set estimates;
- ``vocoder_training``, ``vocoding``: the WaveNet's training and test-set synthesis;
- ``denoiser_training``, ``denoising``: B2's training and test-set outputs;
- ``signal_methods``: the signal-processing methods (input, oracles, B1) over the test set;
- ``scoring``: metrics of every method's outputs, cached;
- ``listening_test``: the listening test's stimuli from a run's outputs and mixtures.

Import the submodules directly; this package file imports nothing heavy.
"""
