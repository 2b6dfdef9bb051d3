"""Run the command line as ``python -m ionscope``."""

from ionscope.cli import main

main()
