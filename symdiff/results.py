"""Results of sd.grad/jacobian/hessian that render in Jupyter (work in progress)."""
