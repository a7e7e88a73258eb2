"""Reports from result files: leaderboard tables, significance tests, plots."""
