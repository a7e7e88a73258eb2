"""xalbench.explain."""
