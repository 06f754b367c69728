"""Linear-algebra ops: inv, det, slogdet, solve, diag, outer, kron, norm (work in progress)."""
