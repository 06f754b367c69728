"""C++ rendering of the linear-algebra ops (work in progress)."""
