"""Choosing the cheapest equivalent form (work in progress)."""
