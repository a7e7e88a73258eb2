"""xalbench.report."""
