"""Train, or evaluate, a brain-MRI classifier: ``python train.py [overrides]``.

Examples::

    python train.py                                     # default CNN on the demo data
    python train.py data=folder data.root=/data/brain44c model.optimizer.lr=3e-4
    python train.py -m model.optimizer.lr=1e-3,3e-4     # grid multirun
    python train.py -m hparams_search=cnn_optuna        # Optuna search (resumable)
    python train.py train=false ckpt_path=outputs/.../checkpoints/last.ckpt   # evaluate
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from braintumor.runs.names import register_resolvers

register_resolvers()  # before Hydra composes: `--cfg job --resolve` needs ${run_name:...}


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the pipeline and return the optimized metric (for Hydra sweepers).

    Every run records its status, wall time, overrides and metrics in ``run_info.json``.
    """
    if cfg.get("malloc_tuning"):
        from braintumor.runs.allocator import tune_malloc

        tune_malloc()
    from lightning.pytorch.utilities import rank_zero_only

    from braintumor import pipeline  # imported here so `--help` and `--cfg` stay fast
    from braintumor.runs.record import recorded_run

    if rank_zero_only.rank != 0:  # another process of a multi-process run: rank 0 records
        metrics = pipeline.train(cfg) if cfg.get("train", True) else pipeline.evaluate(cfg)
        return metrics.get(cfg.get("optimized_metric") or "")

    job = HydraConfig.get().job
    run_dir = Path(cfg.paths.output_dir)
    overrides = list(HydraConfig.get().overrides.task)
    num = job.get("num") if HydraConfig.get().mode.name == "MULTIRUN" else None
    with recorded_run(run_dir, overrides, cfg.get("optimized_metric"), num, cfg.train) as record:
        metrics = pipeline.train(cfg) if cfg.get("train", True) else pipeline.evaluate(cfg)
        return record.finish(metrics)


if __name__ == "__main__":
    main()
