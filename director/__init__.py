"""Strongroom director package."""
