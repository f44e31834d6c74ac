"""`python -m ttfs ...`: the same command line as the `ttfs` entry point (e.g. from a checkout that is not installed)."""
import sys

from ttfs.cli import main

sys.exit(main())
