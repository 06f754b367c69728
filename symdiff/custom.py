"""User-defined ops: sd.elementwise and sd.custom_vjp (work in progress)."""
