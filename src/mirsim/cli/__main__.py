"""``python -m mirsim.cli``."""

import sys

from mirsim.cli import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
