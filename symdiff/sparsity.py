"""Jacobian and Hessian sparsity patterns (work in progress)."""
