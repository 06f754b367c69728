"""Notes printed beside formulas, e.g. stabilizing rewrites (work in progress)."""
