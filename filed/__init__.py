"""Strongroom filed package."""
