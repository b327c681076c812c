"""Entry point of ``python -m aeflow``."""

import sys

from .cli import main

sys.exit(main())
