"""`python -m signalbeam.agent` runs the `signalbeam-agent` command."""

from signalbeam.agent.main import main

main()
