"""``python -m hjsolve``: the command line of `hjsolve.cli`."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
