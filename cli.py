"""Crucible command line."""
