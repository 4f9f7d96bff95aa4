"""`python -m cofrida` is the same as the `cofrida` console script."""

import sys

from cofrida.cli import main

sys.exit(main())
