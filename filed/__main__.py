"""Run the filed entry point with python -m filed."""

from filed.main import main

main()
