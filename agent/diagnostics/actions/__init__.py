"""The diagnostic actions, grouped by what they look at; registry.py lists them by name."""
