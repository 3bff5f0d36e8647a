"""Follow the composed config through a real run: ``python bench/config_trace.py``.

Composes ``conf/train.yaml`` (demo data, one short epoch), watches every read of the config
(``cfg.x``, ``cfg["x"]``, ``cfg.get``, iteration) and records which ``braintumor`` module made
it, in time order, while :func:`braintumor.train` runs. Prints:

- the modules that read the composed config (target: only ``braintumor.pipeline.*``);
- the *stops*: consecutive reads from one module collapsed into one;
- the *climbs*: stops whose floor (``bench/architecture.py``'s ``FLOORS``) is above the one
  before, i.e. the config went down a floor and then back up.

Reads made by Hydra's ``instantiate`` of a node of it count for the module that called it;
configs that Hydra builds from plain values (``_convert_``ed arguments) are not the composed one.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig, ListConfig, open_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from architecture import floor

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = [
    "data.image_size=32", "data.batch_size=16", "data.num_workers=0", "model.net.widths=[8,16]",
    "trainer.max_epochs=1", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
    "trainer.num_sanity_val_steps=0", "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2", "eval.bootstrap=20",
    "logger=none",
]  # fmt: skip
READS: list[str] = []
TRACED = "braintumor_traced"  # a flag of the composed config, inherited by its nodes


def _caller() -> str | None:
    """The innermost ``braintumor`` module on the stack (below this file)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith("braintumor"):
            return name
        frame = frame.f_back
    return None


def _watch(cls: type, method: str) -> None:
    original = getattr(cls, method)

    def watched(self, *args, **kwargs):
        who = _caller()
        if who is not None and self._get_flag(TRACED):  # the composed config (or a copy)
            READS.append(who)
        return original(self, *args, **kwargs)

    setattr(cls, method, watched)


def main() -> None:
    from hydra import compose, initialize_config_dir

    from braintumor.data.synthetic import write_synthetic_dataset
    from braintumor.resolvers import register_resolvers

    register_resolvers()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_synthetic_dataset(Path(tmp) / "data", num_classes=3, per_class=12, seed=1,
                                       min_size=40, max_size=48)  # fmt: skip
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("train", overrides=[*OVERRIDES, f"data.root={root}",
                                              "data.synthetic=false"])  # fmt: skip
        with open_dict(cfg):
            cfg.paths.output_dir = str(Path(tmp) / "run")
        cfg._set_flag(TRACED, True)
        from braintumor.pipeline.train import train

        for cls in (DictConfig, ListConfig):
            for method in ("__getattr__", "__getitem__", "get", "__iter__", "__contains__"):
                if hasattr(cls, method):
                    _watch(cls, method)
        train(cfg)
    readers = Counter(READS)
    stops = [m for i, m in enumerate(READS) if i == 0 or READS[i - 1] != m]
    climbs = [(a, b) for a, b in itertools.pairwise(stops) if floor(b) > floor(a)]
    files = sorted(readers)
    print(f"reads of the composed config: {len(READS)} from {len(files)} modules")
    for name in files:
        print(f"  {readers[name]:6d}  {name}")
    print(f"stops: {len(stops)}; climbs back up a floor: {len(climbs)}")
    for a, b in climbs:
        print(f"  {a} -> {b}")
    outside = [m for m in files if not m.startswith("braintumor.pipeline")]
    print(f"modules outside pipeline/ reading it: {len(outside)}")


if __name__ == "__main__":
    main()
