"""Turning SimResults into tables, Markdown/CSV reports and traces. Reads results only."""
