"""``RunDir``: the run folder's layout, named once."""

from __future__ import annotations

from braintumor.runs.layout import RunDir


def test_a_checkpoint_knows_its_run_and_a_loose_file_has_none(tmp_path):
    ckpt = tmp_path / "run" / "checkpoints" / "epoch_003.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    run = RunDir.of_checkpoint(ckpt)
    assert run == RunDir(tmp_path / "run")
    assert run.metrics("val") == tmp_path / "run" / "reports" / "val_metrics.json"
    assert run.split_csv.parent == run.root and run.checkpoints == ckpt.parent
    loose = tmp_path / "model.ckpt"
    loose.write_bytes(b"")
    assert RunDir.of_checkpoint(loose) is None
