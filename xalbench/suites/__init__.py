"""xalbench.suites."""
