"""MLflow as a logger (``logger=mlflow``, or ``logger=[tensorboard,mlflow]``): Lightning's
``MLFlowLogger`` for the curves and the run's hyperparameters, plus the report figures as
artifacts. Needs ``mlflow-skinny`` (or ``mlflow``): ``pip install 'braintumor[tracking]'``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger

from braintumor.errors import UsageError

FILE_STORE_OPT_IN = "MLFLOW_ALLOW_FILE_STORE"


def mlflow_logger(tracking_uri: str, experiment_name: str, run_name: str | None = None,
                  tags: Mapping[str, Any] | None = None, **kwargs: Any) -> Logger:  # fmt: skip
    """Lightning's ``MLFlowLogger``. A local ``file:`` store (the default, ``mlruns/``) is
    allowed explicitly: MLflow >= 3.7 refuses one unless ``MLFLOW_ALLOW_FILE_STORE`` is set."""
    try:
        import mlflow  # noqa: F401
        from lightning.pytorch.loggers import MLFlowLogger
    except ImportError as error:
        raise UsageError(
            f"logger=mlflow needs MLflow ({error}): pip install 'braintumor[tracking]' "
            "(mlflow-skinny), or choose another logger (logger=tensorboard)."
        ) from error
    if tracking_uri.startswith("file:"):
        os.environ.setdefault(FILE_STORE_OPT_IN, "true")
    tags = {str(k): str(v) for k, v in (tags or {}).items()}
    return MLFlowLogger(experiment_name=experiment_name, run_name=run_name,
                        tracking_uri=tracking_uri, tags=tags, **kwargs)  # fmt: skip


def log_report_images(loggers: Iterable[Logger], reports: Path) -> None:
    """Every figure of a run's ``reports/`` folder, as artifacts of its MLflow runs."""
    from lightning.pytorch.loggers import MLFlowLogger

    figures = sorted(Path(reports).glob("*.png"))
    for lg in loggers:
        if isinstance(lg, MLFlowLogger) and figures:
            for figure in figures:
                lg.experiment.log_artifact(lg.run_id, str(figure), artifact_path="reports")
