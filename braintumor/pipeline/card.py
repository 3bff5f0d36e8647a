"""The run's model card (``reports/model_card.md``): what was trained on what, how it was split,
and what it scored (see :mod:`braintumor.evaluation.model_card`)."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig

from braintumor.data.datamodule import MRIDataModule
from braintumor.evaluation.model_card import write_model_card
from braintumor.pipeline.report import SUBGROUPS
from braintumor.runs.layout import RunDir
from braintumor.training.module import MRIClassifier


def write_run_model_card(
    cfg: DictConfig, run_dir: Path, dm: MRIDataModule, module: MRIClassifier,
    results: dict[str, dict],
) -> None:  # fmt: skip
    """``reports/model_card.md`` of the run (see :mod:`braintumor.evaluation.model_card`)."""
    data_cfg = cfg.data
    controls = []
    if data_cfg.get("group_near_duplicates", True):
        controls.append("perceptual near-duplicates and cropped copies kept in one split")
    if data_cfg.get("group_file"):
        controls.append(f"case groups from {data_cfg.group_file} kept in one split")
    policy = (
        f"{data_cfg.n_folds}-fold cross-validation, fold {data_cfg.get('fold') or 0} tested"
        if data_cfg.get("n_folds")
        else f"split file {data_cfg.split_file}"
        if data_cfg.get("split_file")
        else f"stratified by class (val {data_cfg.get('val_fraction')}, test "
        f"{data_cfg.get('test_fraction')}, data.split_seed={data_cfg.get('split_seed')})"
    )
    name = "demo" if data_cfg.get("synthetic") else Path(str(dm.root)).name
    if data_cfg.get("sources"):  # a merged set: its sources, not their common folder
        name = "+".join(str(s) for s in data_cfg.sources)
    overrides = " ".join(_command_line_overrides())
    write_model_card(
        RunDir(run_dir).reports / "model_card.md",
        run={"name": Path(run_dir).name, "command": f"python train.py {overrides}".strip(),
             "seed": cfg.get("seed"), "commit": _git_commit(), "date": _today()},
        data={"name": name, "root": str(dm.root), "class_names": dm.class_names,
              "taxonomy": dm.taxonomy, "split_policy": policy,
              "counts": {k: len(d) for k, d in dm.datasets.items()},
              "leakage_controls": "; ".join(controls) or "none",
              "skipped": len(dm.catalog.skipped)},
        model={"network": type(module.net).__name__,
               "parameters": f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M",
               "recipe": f"{cfg.model.optimizer.get('_target_', '').rsplit('.', 1)[-1]} "
               f"lr {cfg.model.optimizer.get('lr')}, {cfg.trainer.get('max_epochs')} epochs max, "
               f"batch {data_cfg.get('batch_size')}, image {dm.image_size} px"},
        results=results,
        subgroups=(results.get("test") or {}).get(SUBGROUPS, []),
    )  # fmt: skip


def _command_line_overrides() -> list[str]:
    """The overrides the run was started with (Hydra's record of the command line)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except (ValueError, AttributeError):  # not started through Hydra
        return []


def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, cwd=Path(__file__).parent)  # fmt: skip
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
