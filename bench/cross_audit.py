"""The audit across sets and a merged catalog on public-set look-alikes: wall times.

    python bench/cross_audit.py [--scale 0.3] [--workers N]

Writes (once, into .cache/braintumor/bench_sets) three sets in their real layouts at
``scale`` times the public sizes: figshare3 (3,064 int16 512x512 .mat slices, 3 per patient),
nickparvar4 (7,023 JPEGs of 512 px in Training/Testing, a fifth of them copies of figshare
slices windowed by another rule, some rescaled or cropped, as the real set holds them) and
br35h (3,000 JPEGs of 200-600 px). Distinct phantoms rendered at 128 px and enlarged (the
hashes see low frequencies only). Times: the audit across the three (cold: every file decoded
and hashed; warm: fingerprints cached), and a merged catalog of figshare3 + nickparvar4 (cold
and warm). Prints a Markdown table and appends it to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.data.public_sets: the fixture writers of the tests

from bench.common import RESULTS, header  # noqa: E402
from braintumor.data.catalog import CatalogSettings  # noqa: E402
from braintumor.data.cross_audit import audit_sources, parse_source  # noqa: E402
from braintumor.data.merged import build_merged_catalog, source_settings  # noqa: E402
from braintumor.data.synthetic import render_scan  # noqa: E402
from tests.data.public_sets import NICKPARVAR, write_figshare_mat  # noqa: E402

FULL = {"figshare3": 3064, "nickparvar4": 7023, "br35h": 3000}
FIGSHARE_CLASSES = {1: "Meningioma T1C+", 2: "Glioblastoma T1C+", 3: "Schwannoma T1C+"}


def phantom(name: str, seed: list[int], side: int, rng: np.random.Generator) -> np.ndarray:
    small = Image.fromarray(render_scan(name, np.random.default_rng(seed), 128))
    big = np.asarray(small.resize((side, side), Image.BILINEAR), dtype=np.float64)
    return big + rng.normal(0, 2.0, big.shape)


def write_sets(base: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """The three sets under ``base`` (reused when complete); their image counts."""
    counts = {name: max(30, round(n * scale)) for name, n in FULL.items()}
    stamp = base / f".complete-{counts['figshare3']}-{counts['nickparvar4']}-{counts['br35h']}"
    if stamp.is_file():
        return counts
    shutil.rmtree(base, ignore_errors=True)
    rng = np.random.default_rng(seed)
    fig = base / "figshare3"
    fig.mkdir(parents=True)
    slices = []
    for n in range(counts["figshare3"]):
        label = 1 + (n // 3) % 3
        values = phantom(FIGSHARE_CLASSES[label], [seed, 1, n], 512, rng) * 12 + 30
        write_figshare_mat(fig / f"{n + 1}.mat", label, str(100000 + n // 3), values.round())
        slices.append(values)
    copies = counts["nickparvar4"] // 5
    nick = base / "nickparvar4"
    folders = list(NICKPARVAR)
    for n in range(counts["nickparvar4"]):
        split = "Testing" if n % 6 == 0 else "Training"
        folder = nick / split / folders[n % 4]
        folder.mkdir(parents=True, exist_ok=True)
        if n < copies:  # a figshare slice, min..max windowed, some rescaled or cropped
            values = slices[int(rng.integers(len(slices)))]
            image = Image.fromarray(
                ((values - values.min()) / np.ptp(values) * 255).astype(np.uint8)
            )
            if n % 3 == 1:
                image = image.resize((400, 400))
            elif n % 3 == 2:
                image = image.crop((8, 5, 500, 506))
        else:
            values = phantom(NICKPARVAR[folders[n % 4]], [seed, 2, n], 512, rng)
            image = Image.fromarray(values.clip(0, 255).astype(np.uint8))
        image.save(folder / f"{n}.jpg", quality=90)
    br = base / "br35h"
    for n in range(counts["br35h"]):
        folder = br / ("yes" if n % 2 else "no")
        folder.mkdir(parents=True, exist_ok=True)
        side = int(rng.integers(200, 601))
        name = "Glioblastoma T2" if n % 2 else "_NORMAL T2"
        values = phantom(name, [seed, 3, n], side, rng)
        Image.fromarray(values.clip(0, 255).astype(np.uint8)).save(folder / f"{n}.jpg")
    stamp.write_text("")
    return counts


def count_candidates(sources: list, cache_dir: Path) -> int:
    """How many pairs the crop hash proposes for verification across the sets."""
    from braintumor.data.catalog import CatalogStages
    from braintumor.data.duplicates import near_duplicate_pairs
    from braintumor.data.merged import scan_source

    hashes = []
    for source in sources:
        stages = CatalogStages(CatalogSettings(source.root, cache_dir=cache_dir))
        found, _ = scan_source(stages, source)
        hashes += [stages.prints[s.path].crop_hash for s in found]
    return len(near_duplicate_pairs(hashes, 12))


def timed(function, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.3, help="share of the public sizes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    base = ROOT / ".cache" / "braintumor" / "bench_sets"
    counts, made = timed(write_sets, base, args.scale)
    names = ["figshare3", "nickparvar4", "br35h"]
    sources = [parse_source(f"{n}={base / n}") for n in names]
    total = sum(counts.values())
    notes_at_start = header("Audit across sets and merged catalog (issue 14)", [])[:-1]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        report, cold = timed(audit_sources, sources, workers=args.workers, cache_dir=tmp)
        _, warm = timed(audit_sources, sources, workers=args.workers, cache_dir=tmp)
        candidates = count_candidates(sources, Path(tmp))  # fingerprints cached by the audit
        rows += [("audit across the 3 sets, cold", total, cold),
                 ("audit across the 3 sets, warm (fingerprints cached)", total, warm)]  # fmt: skip
        pair = source_settings(names[:2], {n: base / n for n in names[:2]})
        settings = CatalogSettings(base, taxonomy="family", cache_dir=Path(tmp) / "merged",
                                   workers=args.workers)  # fmt: skip
        catalog, merged_cold = timed(build_merged_catalog, settings, pair)
        _, merged_warm = timed(build_merged_catalog, settings, pair)
        n_pair = counts["figshare3"] + counts["nickparvar4"]
        rows += [("merged catalog figshare3 + nickparvar4, cold", n_pair, merged_cold),
                 ("merged catalog figshare3 + nickparvar4, warm", n_pair, merged_warm)]  # fmt: skip
    planted = counts["nickparvar4"] // 5
    found = report["overlap"]["nickparvar4"]["figshare3"]  # type: ignore[index]
    lines = (
        notes_at_start
        + [
            f"- {note}"
            for note in [
                f"data: look-alikes of figshare3 ({counts['figshare3']} .mat, 512 px), nickparvar4 "
                f"({counts['nickparvar4']} JPEGs, 512 px, {planted} of them figshare copies) and "
                f"br35h ({counts['br35h']} JPEGs, 200-600 px): {args.scale:g} x the public sizes, "(
                    f"written in {made:.0f} s" if made >= 1 else "reused from an earlier run"
                )
                + f"; {args.workers} workers",
                f"copies found by the audit: {found} nickparvar4 images with a figshare3 copy "
                f"({planted} planted); cross-set groups in the merged catalog kept in one split",
                f"crop-hash candidates verified pixel by pixel: {candidates} pairs (phantoms of "
                "few classes look alike: a worst case); warm runs reuse their scores",
            ]
        ]
        + [""]
    )
    lines += ["| step | images | seconds | images/s | linear full-size estimate (s) |",
              "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    full = {"audit": sum(FULL.values()), "merged": FULL["figshare3"] + FULL["nickparvar4"]}
    for step, n, seconds in rows:
        estimate = seconds * full["audit" if step.startswith("audit") else "merged"] / n
        lines.append(f"| {step} | {n} | {seconds:.1f} | {n / seconds:.0f} | {estimate:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    with RESULTS.open("a") as f:
        f.write("\n" + text)
    del catalog


if __name__ == "__main__":
    main()
