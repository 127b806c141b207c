"""``python -m synthsep_lib``: the ``synthsep`` command line (:mod:`synthsep_lib.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
