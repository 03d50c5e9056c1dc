"""Integrations with frameworks a shop already runs (each needs its own extra)."""
