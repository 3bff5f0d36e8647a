"""``python -m braintumor audit ROOT`` or ``NAME=ROOT NAME=ROOT ...``: a dataset's counts,
sizes, bad files and duplicates, or the images present in several sets, as
``audit.md`` and ``audit.json``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from braintumor.data.audit import audit_dataset, to_markdown
from braintumor.data.cross_audit import audit_sources, parse_source
from braintumor.data.cross_audit import to_markdown as cross_markdown


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor audit",
        description="Audit a class-folder image dataset: counts, sizes, modes, unreadable and "
        "junk files, exact and near-duplicate images. Several sets (NAME=ROOT ...): the images "
        "present in more than one.",
    )
    parser.add_argument(
        "roots", nargs="+", metavar="root",
        help="data root: root/<class>/*.jpeg; or several, each NAME=ROOT (e.g. "
        "figshare3=data/figshare3) or ROOT, for the audit across sets",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None,
        help="folder for audit.md and audit.json (default: outputs/audit/<root name>)",
    )  # fmt: skip
    parser.add_argument("--distance", type=int, default=12, help="max pHash bit distance")
    parser.add_argument("--hash-size", type=int, default=16, help="pHash side (bits = side²)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes")
    args = parser.parse_args(argv)
    sources = [parse_source(root) for root in args.roots]
    across = len(sources) > 1 or sources[0].layout != "folder" or "=" in args.roots[0]
    name = "+".join(s.name for s in sources)
    out = args.out or Path("outputs") / "audit" / name
    out.mkdir(parents=True, exist_ok=True)
    if across:
        report = audit_sources(
            sources, args.distance, args.hash_size, args.workers, cache_dir=out / "fingerprints"
        )
        markdown = cross_markdown(report)
    else:
        report = audit_dataset(
            sources[0].root, args.distance, args.hash_size, args.workers,
            cache_file=out / "fingerprints.json", progress=True,
        )  # fmt: skip
        markdown = to_markdown(report)
    (out / "audit.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "audit.md").write_text(markdown)
    summary = markdown.split("## Images per class" if not across else "## Overlap")[0]
    print(summary + f"Full audit: {out / 'audit.md'} and {out / 'audit.json'}")
    return report


if __name__ == "__main__":
    main()
