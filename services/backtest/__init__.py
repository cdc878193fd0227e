"""Backtests that run the same strategy, order and position code as the live mesh."""
