"""Run the storaged entry point with python -m storaged."""

from storaged.main import main

main()
