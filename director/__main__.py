"""Run the director entry point with python -m director."""

from director.main import main

main()
