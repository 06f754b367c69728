"""Data-parallel training over MPI (work in progress)."""
