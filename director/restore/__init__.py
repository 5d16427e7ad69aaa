"""Restore selection and bootstraps: pure functions over catalog rows."""
