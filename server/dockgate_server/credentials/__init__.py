"""Temporary credentials: role sessions, federation tokens and registry login tokens."""
