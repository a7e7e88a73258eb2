"""xalbench.strategies."""
