"""Strongroom console package."""
