"""``python -m mirsim.cli``."""

import sys

from mirsim.cli.commands import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
