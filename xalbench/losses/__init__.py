"""xalbench.losses."""
