"""Strongroom storaged package."""
