"""TensorBoard that opens on what matters: train and val of each metric on one chart with the
learning rate beside them (the CUSTOM SCALARS tab), no per-epoch ``epoch`` chart, and the
per-class numbers of a split as one table and one figure instead of a chart per class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard.summary import hparams

from braintumor.evaluation.per_class_plot import plot_per_class

TABLE_COLUMNS = ("precision", "recall", "f1", "support", "auroc")


class RunBoard(TensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with a custom-scalars ``layout``.

    ``layout``: ``{category: {chart: [tag or regex, ...]}}``; each chart overlays the scalars
    whose tag matches one of its entries in full (``val/loss``, ``lr-.*``). Lightning's
    ``epoch`` scalar is not written (the step axis and the curves already show it).
    """

    def __init__(self, *args: Any, layout: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if OmegaConf.is_config(layout):
            layout = OmegaConf.to_container(layout, resolve=True)  # type: ignore[assignment]
        self.layout: dict[str, dict[str, list[str]]] = {
            category: {chart: list(tags) for chart, tags in charts.items()}
            for category, charts in (layout or {}).items()
        }
        self._layout_written = False
        self.differing: set[str] = set()  # keys a sweep varies (set with the final metrics)

    def _write_layout(self) -> None:
        if self._layout_written or not self.layout:
            return
        self.experiment.add_custom_scalars(custom_scalars_layout(self.layout))
        self._layout_written = True

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._write_layout()
        super().log_metrics({k: v for k, v in metrics.items() if k != "epoch"}, step)

    @rank_zero_only
    def log_hyperparams(self, params: Any, metrics: Any = None, step: int | None = None) -> None:
        """``params`` for ``hparams.yaml``; with ``metrics`` also the HPARAMS tab's row, where
        the keys a sweep varies (in a single run: those its command line set) are marked as
        the ones that differ between runs: TensorBoard lists them first and shows the first
        five hyperparameters by default (``differing``, given by the pipeline)."""
        self._write_layout()
        if not metrics or not isinstance(metrics, Mapping):
            super().log_hyperparams(params, metrics, step)
            return
        super().log_hyperparams(params, None, step)  # hparams.yaml
        params = {k: v for k, v in dict(params).items() if v is not None}
        self.log_metrics(metrics, step)
        experiment, start, end = hparams(params, dict(metrics))
        mark_differing(experiment, self.differing & set(params))
        writer = self.experiment._get_file_writer()
        for summary in (experiment, start, end):
            writer.add_summary(summary, step)


def mark_differing(experiment: Any, keys: set[str]) -> None:
    """Mark ``keys`` as differing between runs in an ``_hparams_/experiment`` summary, and
    put them first (TensorBoard shows the first five hyperparameters of its table)."""
    value = experiment.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    infos = list(data.experiment.hparam_infos)
    for info in infos:
        info.differs = info.name in keys
    data.experiment.ClearField("hparam_infos")
    data.experiment.hparam_infos.extend(sorted(infos, key=lambda info: not info.differs))
    value.metadata.plugin_data.content = data.SerializeToString()


def custom_scalars_layout(layout: Mapping[str, Mapping[str, Sequence[str]]]) -> dict:
    """``layout`` in the form of ``SummaryWriter.add_custom_scalars``: multiline charts whose
    entries must match a whole tag."""
    return {
        category: {chart: ["Multiline", [f"^{tag}$" for tag in tags]]
                   for chart, tags in charts.items()}
        for category, charts in layout.items()
    }  # fmt: skip


def per_class_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The per-class rows as a Markdown table (TensorBoard's TEXT tab renders it)."""
    columns = [c for c in TABLE_COLUMNS if rows and c in rows[0]]
    lines = ["| class | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        cells = [_cell(row[c], integer=c == "support") for c in columns]
        name = str(row["class"]).replace("|", "\\|")  # a bar would end the cell
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: Any, integer: bool) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(number):
        return "n/a"
    return str(int(number)) if integer else f"{number:.3f}"


def figure_pixels(fig: Figure) -> np.ndarray:
    """The rendered figure as an (H, W, 3) uint8 array (``dataformats="HWC"``)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def log_split_figures(
    board: TensorBoardLogger,
    reports: Path,
    split: str,
    class_rows: Sequence[Mapping[str, Any]],
    step: int,
) -> None:
    """Log a split's confusion matrices (the PNGs just written in ``reports``, one per label
    set) and its per-class numbers as the text table and the image ``<split>/per_class``."""
    writer = board.experiment
    for png in sorted(reports.glob(f"confusion_matrix_{split}*.png")):
        with Image.open(png) as image:
            pixels = np.asarray(image.convert("RGB"))
        suffix = png.stem.removeprefix(f"confusion_matrix_{split}")  # "", "_tumor_type"
        writer.add_image(f"{split}/confusion_matrix{suffix}", pixels, step, dataformats="HWC")
    if not class_rows:
        return
    writer.add_text(f"{split}/per_class", per_class_table(class_rows), step)
    fig = plot_per_class(class_rows, f"{split}: per class (n={_total(class_rows)})")
    writer.add_image(f"{split}/per_class", figure_pixels(fig), step, dataformats="HWC")
    plt.close(fig)


def _total(rows: Sequence[Mapping[str, Any]]) -> int:
    return int(sum(float(r.get("support", 0)) for r in rows))
