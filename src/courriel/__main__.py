"""``python -m courriel``: the same as the ``courriel`` command."""

from __future__ import annotations

import sys

from courriel.cli import main

if __name__ == "__main__":
    sys.exit(main())
