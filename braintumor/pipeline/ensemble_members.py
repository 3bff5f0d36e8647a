"""The members of an ensemble (``python -m braintumor ensemble``): their checkpoints and the
splits their runs recorded; members that cannot be combined refused, saying why; the images
none of them trained on, which calibrate and test the ensemble."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import DataError, UsageError
from braintumor.runs.checkpoint_file import TrainedCheckpoint, read_checkpoint, weights_checksum
from braintumor.runs.layout import RunDir


@dataclass(frozen=True)
class Member:
    """One member: its checkpoint, what it holds, and its run's split (path -> row)."""

    ckpt: Path
    found: TrainedCheckpoint
    split: dict[str, dict[str, str]]
    root: Path | None  # data.root of its run, when recorded


def member_checkpoint(given: str | Path) -> Path:
    """A checkpoint, or a run folder's best one (the checkpoint its test report scored)."""
    path = Path(given)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"ensemble member '{path}' is neither a checkpoint nor a run.")
    run = RunDir(path)
    scored = run.metrics("test")
    if scored.is_file():
        ckpt = json.loads(scored.read_text()).get("checkpoint")
        if ckpt and Path(ckpt).is_file():
            return Path(ckpt)
    best = sorted(run.checkpoints.glob("epoch_*.ckpt"))
    if len(best) == 1:
        return best[0]
    raise DataError(
        f"run '{path}' has {len(best)} epoch_*.ckpt files and no test report naming its best "
        "one: give the member's checkpoint file instead of the run folder."
    )


def read_member(given: str | Path) -> Member:
    ckpt = member_checkpoint(given)
    found = read_checkpoint(ckpt)
    run = RunDir.of_checkpoint(ckpt)
    if run is None or not run.split_csv.is_file():
        raise DataError(
            f"ensemble member '{ckpt}' has no split.csv beside it (<run>/split.csv): without it "
            "the images its model trained on are unknown, and so are the images that can "
            "calibrate and test the ensemble fairly. Use checkpoints inside their run folders."
        )
    with run.split_csv.open(newline="") as f:
        split = {row["path"]: row for row in csv.DictReader(f)}
    root = None
    if run.environment.is_file():  # the resolved config the run recorded
        recorded = json.loads(run.environment.read_text()).get("config", {}).get("data", {})
        root = Path(recorded["root"]) if recorded.get("root") else None
    elif (run.root / "ensemble.json").is_file():  # an ensemble as a member
        recorded = json.loads((run.root / "ensemble.json").read_text())
        root = Path(recorded["data_root"]) if recorded.get("data_root") else None
    return Member(ckpt, found, split, root)


def check_members(members: Sequence[Member]) -> Preprocessing:
    """The members' common preprocessing; members that differ in classes, image size,
    channels or normalization are refused, naming both."""
    if len(members) < 2:
        raise UsageError(f"an ensemble needs at least 2 members; got {len(members)}.")
    first = members[0]
    seen: dict[str, Path] = {}
    for member in members:  # the same weights twice would count double, silently
        checksum = weights_checksum(member.found.state_dict)
        if checksum in seen:
            raise UsageError(
                f"ensemble members '{seen[checksum]}' and '{member.ckpt}' hold the same weights: "
                "give each member once."
            )
        seen[checksum] = member.ckpt
    a = first.found.preprocessing
    for other in members[1:]:
        b = other.found.preprocessing
        for field in ("class_names", "image_size", "channels", "mean", "std"):
            mine = np.atleast_1d(getattr(a, field)).tolist()
            theirs = np.atleast_1d(getattr(b, field)).tolist()
            if mine != theirs:
                raise DataError(
                    f"ensemble members differ in {field}: '{first.ckpt}' has {mine}, "
                    f"'{other.ckpt}' has {theirs}. Members must be trained on the same classes "
                    "with the same preprocessing."
                )
        if set(other.split) != set(first.split):
            raise DataError(
                f"ensemble members were trained on different data: the split.csv of "
                f"'{other.ckpt}' lists other images than that of '{first.ckpt}'."
            )
    return a


def held_out(members: Sequence[Member]) -> tuple[list[str], list[str], str]:
    """``(validation, test, why)``: images no member trained on that some member validated
    on, and images every member held out as test; ``why`` says what is missing."""
    paths = list(members[0].split)
    trained = {p for m in members for p, row in m.split.items() if row["split"] == "train"}
    test = [p for p in paths if all(m.split[p]["split"] == "test" for m in members)]
    val = [p for p in paths if p not in trained and p not in set(test)
           and any(m.split[p]["split"] == "val" for m in members)]  # fmt: skip
    why = ""
    if not val:
        why = (
            "no image was held out of every member's training and validated on: the members "
            "were trained on different splits (cross-validation folds?), so no data is left "
            "to calibrate the ensemble fairly. Train the members on one split (the same "
            "data.split_seed or data.split_file, other seeds)"
        )
    return val, test, why


def data_root(members: Sequence[Member], given: Path | None) -> Path:
    root = given or members[0].root
    if root is None or not root.is_dir():
        raise DataError(
            f"the members' data folder {'(' + str(root) + ') ' if root else ''}is not here: "
            "give it with --data-root."
        )
    missing = [p for p in members[0].split if not (root / p).is_file()]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) of the members' split.csv are not under '{root}' (e.g. "
            f"'{missing[0]}'): --data-root must be the folder the members were trained on."
        )
    return root


def check_out(out: Path, members: Sequence[Member]) -> None:
    """Refuse an output folder that holds something other than an earlier ensemble (a training
    run, a member's own folder): its reports and checkpoints would be overwritten."""
    runs = {RunDir.of_checkpoint(m.ckpt).root.resolve() for m in members}
    if out.resolve() in runs:
        raise UsageError(f"--out '{out}' is a member's run folder: give a new folder.")
    if not out.exists() or (out / "ensemble.json").is_file():
        return
    if any(out.iterdir()):
        raise UsageError(
            f"--out '{out}' holds other files (not an earlier ensemble): give a new or empty "
            "folder, so that nothing in it is overwritten."
        )
