"""The checks ``train.py`` runs before it imports torch and Lightning, so that a mistyped
option, a missing or wrong setting or a data folder that is not there is answered in a
second, in one line (:class:`~braintumor.errors.UsageError` or
:class:`~braintumor.errors.DataError`), instead of after the imports, inside a traceback.

Only the standard library, OmegaConf, the layouts' declarations
(:data:`braintumor.data.sources.LAYOUTS`) and the ``data.*`` constraints
(:data:`braintumor.data.parameters.CONSTRAINTS`), both standard library only, are imported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from braintumor.constraints import NULL, Constraint, Either, Interval, Options
from braintumor.data.parameters import CONSTRAINTS as DATA
from braintumor.data.parameters import WHOLE
from braintumor.data.sources import LAYOUTS
from braintumor.errors import DataError, UsageError

SWEEP_FUNCTIONS = ("choice(", "range(", "interval(", "glob(", "tag(", "sort(", "shuffle(")
SYNTHETIC_MANIFEST = ".synthetic.json"  # braintumor.data.synthetic.MANIFEST_NAME (no numpy here)


def check_command_line(args: Sequence[str], conf_dir: Path) -> None:
    """Every ``group=option`` of ``args`` names a file of ``conf_dir/<group>/``.

    Raises :class:`UsageError` naming the unknown option and the available ones. Options of
    a multirun (``model=cnn,backbone``) are checked one by one; sweep functions
    (``choice(...)``), Hydra's own groups (``hydra/...``) and runs with another config
    directory (``-cd``, ``-cp``) are left to Hydra.
    """
    if any(arg in ("-cd", "--config-dir", "-cp", "--config-path") for arg in args):
        return
    for arg in args:
        key, sep, value = arg.partition("=")
        group = key.lstrip("+~").split("@")[0]
        if arg.startswith("-") or not sep or not group or group.startswith("hydra"):
            continue
        folder = conf_dir / group
        if "." in group or not folder.is_dir() or value.startswith(SWEEP_FUNCTIONS):
            continue
        for option in value.split(","):
            option = option.strip().strip("'\"")
            if option in ("", "null") or (folder / f"{option}.yaml").is_file():
                continue
            choices = sorted(p.relative_to(folder).with_suffix("").as_posix()
                             for p in folder.rglob("*.yaml"))  # fmt: skip
            raise UsageError(
                f"unknown {group} '{option}' ({arg}); choose one of: {', '.join(choices)} "
                f"(the files of conf/{group}/)."
            )


# key -> (its constraint, an example); a missing key is not checked.
# the data.* constraints are the datamodule's own (data/parameters.py), checked here before
# torch is imported; the examples fill the message
EXAMPLES = {"data.image_size": "128", "data.batch_size": "32", "data.channels": "1",
            "data.val_fraction": "0.15", "data.test_fraction": "0.15", "data.num_workers": "2",
            "data.split_seed": "42", "seed": "42", "trainer.max_epochs": "20",
            "model.optimizer.lr": "1e-3"}  # fmt: skip
OWN: dict[str, Constraint] = {  # the keys no settings object of a lower floor declares
    "seed": Either((NULL, WHOLE)),
    "trainer.max_epochs": Either((Options((-1,)), Interval(1, whole=True))),
    "model.optimizer.lr": Interval(0, closed="neither"),
}
NUMBERS: dict[str, tuple[Constraint, str]] = {
    key: (DATA[key.removeprefix("data.")] if key.startswith("data.") else OWN[key], example)
    for key, example in EXAMPLES.items()
}


def check_config(cfg: DictConfig, choices: Mapping[str, str | None] | None = None) -> None:
    """A composed run config: no missing (``???``) value, the numbers of :data:`NUMBERS` of
    the right kind, and the files and folders it names present.

    ``choices`` (Hydra's ``runtime.choices``, e.g. ``{"data": "brain44c"}``) name the
    options in the messages. Raises :class:`UsageError` or :class:`DataError`.
    """
    choices = choices or {}
    missing = list(_missing_keys(cfg))
    if missing:
        given = f" with data={choices['data']}" if choices.get("data") else ""
        hint = " (data.root: the folder of your images)" if "data.root" in missing else ""
        raise UsageError(
            f"{', '.join(missing)} must be set{given}: add "
            f"{' '.join(f'{key}=...' for key in missing)} to the command line{hint}."
        )
    for key, (constraint, example) in NUMBERS.items():
        value = OmegaConf.select(cfg, key, default="<absent>", throw_on_resolution_failure=False)
        if value != "<absent>" and not constraint.accepts(value):
            raise UsageError(f"{key}={value!r}: expected {constraint}, e.g. {key}={example}.")
    data = cfg.get("data")
    if data is not None and data.get("_target_"):
        _check_data_root(data, choices.get("data"))
        for key in ("split_file", "group_file"):
            if data.get(key) is not None and not Path(data[key]).is_file():
                raise DataError(f"data.{key}='{data[key]}' does not exist: give an existing file.")
    _check_checkpoint(cfg)


def _missing_keys(node: DictConfig, prefix: str = "") -> Iterator[str]:
    """The dotted keys whose value is ``???`` (interpolations are not resolved)."""
    for key in node:
        if OmegaConf.is_missing(node, key):
            yield f"{prefix}{key}"
        elif not OmegaConf.is_interpolation(node, key) and isinstance(node[key], DictConfig):
            yield from _missing_keys(node[key], f"{prefix}{key}.")


def _check_data_root(data: DictConfig, choice: str | None) -> None:
    if data.get("sources") is not None and data.get("roots") is not None:  # several sets
        for source in data.sources:
            root = data.roots.get(source)
            if root is None or not Path(str(root)).exists():
                raise DataError(
                    f"data.roots.{source}='{root}' does not exist (data.sources names "
                    f"{source}): get it with python -m braintumor download {source}, or set "
                    f"data.roots.{source}=/path/to/it."
                )
        return
    if data.get("root") is None:
        raise UsageError(
            f"data.root is not set (data={choice or 'folder'}): add data.root=/path/to/images."
        )
    root = Path(str(data.root))
    if data.get("synthetic"):  # the demo: generated into root on first use
        if root.is_dir() and not (root / SYNTHETIC_MANIFEST).is_file() and any(root.iterdir()):
            raise DataError(
                f"data.root='{root}' holds files that are not the demo's, and data="
                f"{choice or 'demo'} generates its phantoms into data.root (replacing what is "
                f"there). For your own images: data=folder data.root={root} (or data=presplit)."
            )
        return
    layout = data.get("layout", "folder")
    shape = LAYOUTS[layout].shape if layout in LAYOUTS else f"the {layout} layout"
    if not root.exists():
        raise DataError(
            f"data root '{root}' does not exist (data.root): expected a folder of images "
            f"({shape}). Set data.root=/path/to/data."
        )
    if layout in LAYOUTS and not root.is_dir():
        raise DataError(f"data root '{root}' is a file (data.root): expected a folder ({shape}).")


def _check_checkpoint(cfg: DictConfig) -> None:
    ckpt = cfg.get("ckpt_path")
    if ckpt is None:
        if not cfg.get("train", True):
            raise UsageError(
                "train=false evaluates a checkpoint: add ckpt_path=/path/to/run/checkpoints/"
                "last.ckpt (or a run directory)."
            )
        return
    if str(ckpt) != "last" and not Path(str(ckpt)).exists():
        raise UsageError(
            f"checkpoint '{ckpt}' does not exist (ckpt_path): give a .ckpt file, a run "
            "directory, or ckpt_path=last to resume this run's folder."
        )
