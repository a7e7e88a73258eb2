"""xalbench.data."""
