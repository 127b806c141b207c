"""synthsep_lib — the library of the SynthSep book.

Speech separation by synthesis (Liu, Jackson, Wang, IEEE SPL 2019): corpora and mixture
simulation, features identical to the original preprocessing, and — in subpackages
that import their own framework — the Keras encoder and the PyTorch WaveNet vocoder.
Importing this package imports neither TensorFlow nor PyTorch.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# Before Keras is first imported (by any submodule): quiet TensorFlow's C++ log and pick
# the TensorFlow backend, unless the environment already says otherwise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

try:
    __version__ = version("synthsep-lib")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
