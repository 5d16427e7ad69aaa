"""Run the console entry point with python -m console."""

from console.main import main

main()
