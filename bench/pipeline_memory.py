"""Peak memory of the data pipeline alone: the decoded cache and the loaders, no model.

    python bench/pipeline_memory.py [--data /tmp/bench44] [--sizes 128,224] [--no-append]

For each image size, a fresh process builds the datamodule of ``train.py data=folder`` on the
44-class JPEG set (bench/bench44.py; the default cache, augmentation and workers), reads one
epoch of the train loader and the whole val and test loaders, and reports its peak resident
memory, the main process's share of it that the import of torch / torchvision / Lightning
already takes, the decoded cache's size and the loader workers' peak. Appends the table to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from bench44 import make_bench44
from common import ROOT, append, header

CHILD = """
import json, resource, sys
sys.path.insert(0, {bench!r})
import lightning.pytorch, torch, torchvision  # what every run imports
from common import compose_train
from braintumor.pipeline.build import build_datamodule
imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
cfg = compose_train(["data=folder", "data.root={root}", "data.image_size={size}"])
dm = build_datamodule(cfg)
images = 0
for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
    for x, _ in loader:
        images += len(x)
arrays = {{id(d.images): d.images for d in dm.datasets.values() if d.images is not None}}
cache = sum(a.nbytes for a in arrays.values())  # splits of one image size share an array
print(json.dumps({{"imported": imported, "images": images, "cache": cache,
                  "workers": dm.loading.num_workers,
                  "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}))
"""


def measure(root: Path, size: int) -> dict:
    code = CHILD.format(bench=str(ROOT / "bench"), root=root, size=size)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/bench44")
    parser.add_argument("--sizes", default="128,224")
    parser.add_argument("--no-append", action="store_true", help="print only")
    args = parser.parse_args()
    root = make_bench44(Path(args.data))
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(root, size)
        mib = {k: r[k] / 1024 for k in ("imported", "peak", "children")}  # ru_maxrss: KiB
        rows.append(
            f"| {size} px | {r['images']} | {r['cache'] / 2**20:.0f} MiB "
            f"| {mib['imported']:.0f} MiB | {mib['peak']:.0f} MiB "
            f"| {mib['peak'] - mib['imported']:.0f} MiB "
            f"| {r['workers']} | {mib['children']:.0f} MiB |"
        )
    lines = header("Data pipeline memory", [
        f"{root} (bench/bench44.py), `train.py data=folder` defaults (data.cache=memory, "
        "batched augmentation), one epoch of the train loader + the val and test loaders, no "
        "model; peak = the process's maximum resident set (ru_maxrss), after imports = its "
        "maximum once torch, torchvision and Lightning are imported",
    ])  # fmt: skip
    lines += [
        "| image size | images read | decoded cache | after imports | peak | peak - imports "
        "| workers | largest worker / decoder process |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *rows,
    ]  # fmt: skip
    print("\n".join(lines)) if args.no_append else append(lines)


if __name__ == "__main__":
    main()
