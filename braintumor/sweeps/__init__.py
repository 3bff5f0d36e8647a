"""Sweeps: the report, table and plot written after every multirun (grid, seeds, Optuna)."""
