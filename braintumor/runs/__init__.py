"""Runs: the run folder's records (run_info.json, environment.json), checkpoints, run names
and the allocator settings of a training process."""
