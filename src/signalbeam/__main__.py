"""`python -m signalbeam` runs the `signalbeam` command."""

from signalbeam.cli.main import main

main()
