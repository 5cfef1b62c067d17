"""`python -m factflow` is the `factflow` command."""

from factflow.cli import main

main()
