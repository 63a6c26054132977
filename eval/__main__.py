"""`python -m eval score|run ...`: the same commands as `crucible eval`."""

import sys

from eval.cli import main

sys.exit(main())
