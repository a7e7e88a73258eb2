"""xalbench.testing."""
