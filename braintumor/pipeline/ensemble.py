"""``python -m braintumor ensemble RUN_OR_CKPT... --out DIR``: several trained models as one.

The members (runs of several seeds, or their best checkpoints) must share the classes and the
preprocessing. The ensemble's answer is the mean of the members' calibrated probabilities
(:class:`~braintumor.models.ensemble.Ensemble`); it is then calibrated again (temperature,
abstention threshold, conformal sets, the out-of-distribution check) on validation images that
none of its members trained on, and scored with the run reports' evidence on test images that
none of them trained or was calibrated on; both are read from the members' ``split.csv``.
Members trained on different splits (cross-validation folds) share no such images: refused,
saying so. ``DIR`` is laid out like a run (``checkpoints/ensemble.ckpt``, ``reports/``), so
``predict``, ``export`` and the page take the checkpoint like any other; ``reports/members.md``
compares the ensemble with each member on the same test images, and the predictions CSVs
carry the members' disagreement.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from braintumor.atomic import write_atomically
from braintumor.data.preprocessing import Preprocessing
from braintumor.errors import DataError, UsageError
from braintumor.evaluation import write_split_reports
from braintumor.evaluation.bootstrap import bootstrap_intervals
from braintumor.evaluation.evidence import SplitData, calibrate, split_evidence
from braintumor.evaluation.metrics import summary_metrics
from braintumor.evaluation.settings import EvaluationSettings
from braintumor.inference.cli import user_errors
from braintumor.inference.ood import OodSettings
from braintumor.inference.ood_fit import fit_ood_statistics
from braintumor.inference.torch_predictor import TorchPredictor
from braintumor.pipeline.ensemble_members import (
    Member,
    check_members,
    check_out,
    data_root,
    held_out,
    read_member,
)
from braintumor.runs.checkpoint_file import CALIBRATION
from braintumor.runs.checkpoints import SafeCheckpointIO
from braintumor.runs.layout import RunDir
from braintumor.training.module import MRIClassifier

log = logging.getLogger(__name__)

EVAL_DEFAULTS = Path(__file__).resolve().parents[2] / "conf" / "eval" / "default.yaml"
CHECKPOINT_NAME = "ensemble.ckpt"
COMPARED = ("accuracy", "f1_macro", "log_loss", "ece", "brier")


def ensemble_module(members: Sequence[Member], prep: Preprocessing) -> MRIClassifier:
    """An :class:`MRIClassifier` whose network is the members' :class:`Ensemble`."""
    first = members[0].found.hyper_parameters
    temperatures = [float(m.found.calibration.get("temperature", 1.0)) for m in members]
    net = {
        "_target_": "braintumor.models.ensemble.Ensemble",
        "members": [dict(m.found.hyper_parameters["net"]) for m in members],
        "temperatures": temperatures,
    }
    layer = first.get("gradcam_layer")  # the first member's evidence in the ensemble's answer
    gradcam = f"net.members.0.{layer.removeprefix('net.')}" if layer else None
    module = MRIClassifier(net=net, optimizer=first["optimizer"], preprocessing=prep.to_dict(),
                           gradcam_layer=gradcam)  # fmt: skip
    for i, member in enumerate(members):
        weights = {k.removeprefix("net."): v for k, v in member.found.state_dict.items()
                   if k.startswith("net.")}  # fmt: skip
        module.net.members[i].load_state_dict(weights)
    return module.eval()


def member_probabilities(
    module: MRIClassifier, root: Path, paths: Sequence[str], batch_size: int
) -> np.ndarray:
    """``(M, N, K)``: each member's calibrated probabilities of each image, preprocessed as
    ``predict`` does."""
    predictor = TorchPredictor(module, "cpu")
    out = []
    for start in range(0, len(paths), batch_size):
        pixels = [_load(predictor, root / p) for p in paths[start : start + batch_size]]
        batch = predictor.preprocess(pixels)
        with torch.inference_mode():
            out.append(module.net.member_probabilities(batch).numpy())
    return np.concatenate(out, axis=1)


def _load(predictor: TorchPredictor, path: Path) -> np.ndarray:
    try:
        return predictor.load(path)
    except Exception as error:  # a file replaced, damaged or removed since the members' runs
        raise DataError(
            f"'{path}' of the members' split could not be read now ({error}): the ensemble is "
            "calibrated and scored on exactly the members' images. Restore the file, or "
            "train the members again on the data as it is."
        ) from None


def disagreement(probs: np.ndarray) -> np.ndarray:
    """Per image, the share of members whose top class is not the ensemble's."""
    answer = probs.mean(0).argmax(1)
    return (probs.argmax(2) != answer[None]).mean(0)


def eval_settings(overrides: Sequence[str], seed: int) -> EvaluationSettings:
    """``conf/eval/default.yaml`` with ``eval.key=value`` overrides."""
    values = OmegaConf.load(EVAL_DEFAULTS)
    for item in overrides:
        key, equals, _ = item.partition("=")
        if not key.startswith("eval.") or not equals:
            raise UsageError(f"'{item}': settings are eval.key=value (conf/eval/default.yaml).")
        if OmegaConf.select(values, key[5:], default="<absent>") == "<absent>":
            raise UsageError(f"unknown setting '{key}'; see conf/eval/default.yaml.")
    given = OmegaConf.from_dotlist([item[5:] for item in overrides])  # typed as YAML reads them
    values = OmegaConf.merge(values, given)
    plain = OmegaConf.to_container(values, resolve=True)
    return EvaluationSettings.from_config(plain, seed)


def build_ensemble(
    given: Sequence[str],
    out: Path,
    data: Path | None = None,
    overrides: Sequence[str] = (),
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Build, calibrate, score and save the ensemble of ``given`` into ``out``; its test
    metrics and the members' on the same images."""
    settings = eval_settings(overrides, seed)
    members = [read_member(g) for g in given]
    prep = check_members(members)
    check_out(Path(out), members)
    val, test, why = held_out(members)
    if why:
        raise DataError(f"cannot calibrate the ensemble: {why}.")
    root = data_root(members, data)
    module = ensemble_module(members, prep)
    names = list(prep.class_names)
    index = {n: i for i, n in enumerate(names)}
    split_rows = members[0].split
    run = RunDir(out)
    run.reports.mkdir(parents=True, exist_ok=True)
    raw, per_member, labels = {}, {}, {}
    for split, paths in (("val", val), ("test", test)):
        if not paths:
            continue
        probs = member_probabilities(module, root, paths, batch_size)
        per_member[split], raw[split] = probs, probs.mean(0)
        labels[split] = np.array([index[split_rows[p]["class"]] for p in paths])

    def groups_of(paths: Sequence[str]) -> list[str] | None:
        found = [split_rows[p].get("group", "") for p in paths]
        return found if all(found) else None

    calibration = calibrate(settings, (labels["val"], raw["val"]), None, groups_of(val), names)
    if settings.ood is not None:
        train = [root / p for p, row in split_rows.items() if row["split"] == "train"]
        calibration["ood"] = fit_ood_statistics(
            module, train, [root / p for p in val], calibration, OodSettings(**settings.ood),
            settings.seed,
        )  # fmt: skip
    calibration["members"] = [str(m.ckpt) for m in members]
    module.calibration = {k: v for k, v in calibration.items() if k != "source"}
    ckpt = run.checkpoints / CHECKPOINT_NAME
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    SafeCheckpointIO(out).save_checkpoint(
        {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
         CALIBRATION: module.calibration, "epoch": 0, "global_step": 0},
        ckpt,
    )  # fmt: skip
    results: dict[str, Any] = {}
    for split, paths in (("val", val), ("test", test)):
        if split not in raw:
            continue
        y = labels[split]
        rows = [split_rows[p] for p in paths]
        split_data = SplitData(root, list(paths), [r["class"] for r in rows], groups_of(paths))
        evidence = split_evidence(run.reports, split, y, raw[split], names, split_data,
                                  calibration, settings)  # fmt: skip
        extra = {"checkpoint": str(ckpt), **evidence.fields,
                 "members": [str(m.ckpt) for m in members],
                 "disagreement_mean": float(disagreement(per_member[split]).mean())}  # fmt: skip
        report = write_split_reports(
            run.reports, split, y, evidence.probs, names, extra, ece_bins=settings.ece_bins,
            per_class_extra=evidence.per_class, paths=list(paths),
            min_support=settings.min_support,
        )  # fmt: skip
        results[split] = report.metrics
        _add_disagreement(run.reports / f"{split}_predictions.csv", per_member[split])
    if "test" in raw:
        results["members"] = _compare(members, per_member["test"], labels["test"],
                                      groups_of(test), results["test"], settings)  # fmt: skip
        write_atomically(run.reports / "members.md", _members_md(results["members"]))
    write_atomically(run.root / "ensemble.json", json.dumps({
        "members": [str(m.ckpt) for m in members], "data_root": str(root),
        "validation_images": len(val), "test_images": len(test)}, indent=2))  # fmt: skip
    beside = RunDir.of_checkpoint(members[0].ckpt)  # read_member checked it exists
    write_atomically(run.split_csv, beside.split_csv.read_text())
    return results


def _add_disagreement(path: Path, probs: np.ndarray) -> None:
    """Append the members' disagreement (share of members whose top class differs) to a
    predictions CSV, row by row."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    shares = disagreement(probs)
    rows[0].append("member_disagreement")
    for row, share in zip(rows[1:], shares, strict=True):
        row.append(f"{share:.4g}")
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    write_atomically(path, text.getvalue())


def _compare(members, probs, y, groups, ensemble: dict, settings) -> list[dict[str, Any]]:
    """The test metrics of each member (its own temperature) and of the ensemble, on the same
    images, with the bootstrap interval of macro F1 (over cases when there are some)."""
    names = list(members[0].found.class_names)
    rows = []
    for member, p in [*zip((str(m.ckpt) for m in members), probs, strict=True)]:
        found = summary_metrics(y, p, names, settings.ece_bins)
        found["brier"] = float(np.mean(((p - np.eye(len(names))[y]) ** 2).sum(1)))
        cases = groups if groups is not None and len(set(groups)) < len(groups) else None
        ci, _ = bootstrap_intervals(y, p.argmax(1), len(names), cases,
                                    max(settings.bootstrap, 1), settings.seed)  # fmt: skip
        rows.append({"model": member, **{k: found[k] for k in COMPARED},
                     "f1_macro_ci95": ci["f1_macro"]})  # fmt: skip
    rows.append({"model": "ensemble", **{k: ensemble[k] for k in COMPARED},
                 "f1_macro_ci95": ensemble.get("ci95", {}).get("f1_macro")})  # fmt: skip
    return rows


def _members_md(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["# The ensemble and its members on the same test images", "",
             "| model | accuracy | macro F1 (95% CI) | NLL | ECE | Brier |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
    for r in rows:
        ci = r["f1_macro_ci95"]
        interval = f" ({ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
        lines.append(f"| {r['model']} | {r['accuracy']:.3f} | {r['f1_macro']:.3f}{interval} | "
                     f"{r['log_loss']:.3f} | {r['ece']:.3f} | {r['brier']:.3f} |")  # fmt: skip
    lines += ["", "Members are scored with their own temperature; the ensemble with the one "
              "fitted on the validation images none of them trained on."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor ensemble",
        description="Combine trained runs (or checkpoints) into one model: the mean of their "
        "calibrated probabilities, calibrated again and scored on images none trained on.",
    )  # fmt: skip
    parser.add_argument("members", nargs="+", help="run folders or checkpoints (2 or more), "
                        "and eval.key=value settings (e.g. eval.conformal=0.95)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's folder")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="the members' data folder (default: the one their run recorded)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap and OOD reference seed")
    args = parser.parse_intermixed_args(argv)  # settings may come after --out
    given = [m for m in args.members if "=" not in m]
    overrides = [m for m in args.members if "=" in m]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with user_errors():
        results = build_ensemble(given, args.out, args.data_root, overrides, args.batch_size,
                                 args.seed)  # fmt: skip
    if "members" in results:
        print(_members_md(results["members"]))
    print(f"ensemble of {len(given)} -> {RunDir(args.out).checkpoints / CHECKPOINT_NAME}",
          file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
