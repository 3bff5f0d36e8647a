"""Train, or evaluate, a brain-MRI classifier: ``python train.py [overrides]``.

Examples::

    python train.py                                     # default CNN on the demo data
    python train.py data=folder data.root=/data/brain44c model.optimizer.lr=3e-4
    python train.py -m model.optimizer.lr=1e-3,3e-4     # grid multirun
    python train.py train=false ckpt_path=outputs/.../checkpoints/last.ckpt   # evaluate
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the pipeline and return the optimized metric (for Hydra sweepers)."""
    if cfg.get("malloc_tuning"):
        from braintumor.allocator import tune_malloc

        tune_malloc()
    from braintumor import pipeline  # imported here so `--help` and `--cfg` stay fast

    metrics = pipeline.train(cfg) if cfg.get("train", True) else pipeline.evaluate(cfg)
    name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    main()
