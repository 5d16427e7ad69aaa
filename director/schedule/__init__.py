"""Schedules: the Bareos `Run =` grammar and Freezer-style job schedules, with pure next-run computation."""
