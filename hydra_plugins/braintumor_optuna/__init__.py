"""Hydra sweeper plugin: Optuna that resumes an interrupted study and survives failed trials.

Hydra imports the (non-underscore) modules under the ``hydra_plugins`` namespace package at
start-up; :mod:`.config` registers ``hydra/sweeper=optuna_resumable``.
"""
