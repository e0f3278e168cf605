"""Changing an existing atlas in place: compact, upgrade, retag, merge."""
