"""The vocoders: from an 80-band mel spectrogram to a 22.05 kHz waveform.

The paper's decoder is the WaveNet (below). Beyond the paper (Chapter 7):

- ``synthsep_lib.vocoder.parallel``: a parallel, Fourier-domain vocoder (Vocos-style
  ConvNeXt stack and inverse-STFT head) that makes every sample of an utterance in one
  pass, and an upsampler of the HiFi-GAN family for comparison.
- ``synthsep_lib.vocoder.adversarial``: its spectral losses, discriminators and one
  training step; ``synthsep_lib.pipeline.parallel_vocoder_training`` trains it.

The WaveNet:

PyTorch, as in the paper. A re-implementation of r9y9's ``wavenet_vocoder`` (commit
2092a64 / PyPI 0.1.1, ``legacy=True``) with the same module tree and parameter names,
so that the published LJSpeech checkpoint loads unchanged (see original_code.md#oc-wavenet-modules).

- ``synthsep_lib.vocoder.wavenet``: ``WaveNetConfig``, ``WaveNet`` (teacher-forced
  forward, cached incremental generation for any batch size, CUDA graphs on a GPU),
  ``load_r9y9_state_dict``, ``to_r9y9_state_dict``, ``load_r9y9_checkpoint``.
- ``synthsep_lib.vocoder.logistic_mixture`` and ``.mulaw``: the two output distributions — the
  discretised mixture of logistics (the paper's) and the 256-class mu-law softmax.
- ``synthsep_lib.pipeline.vocoder_training``: training on clean speech (resumable, torchrun + DDP).
- ``synthsep_lib.pipeline.vocoding``: batched and folded generation, test-set outputs.
- ``synthsep_lib.pipeline.pretrained_wavenet``: the published checkpoint, downloaded and verified.

This package file imports nothing heavy; import the submodules (which import torch)
explicitly.
"""
