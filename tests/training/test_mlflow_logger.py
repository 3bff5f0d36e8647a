"""``logger=mlflow`` and ``logger=[tensorboard,mlflow]``: a real MLflow file store in tmp_path
gets the curves, the hyperparameters with the final metrics, and the report figures."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from braintumor.pipeline.train import train
from tests.conftest import tensorboard_dir

mlflow = pytest.importorskip("mlflow", reason="pip install 'braintumor[tracking]'")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # tests never touch the network
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_logger_mlflow_defaults_to_a_local_mlruns_store(make_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg("logger=mlflow")
    assert list(cfg.logger) == ["mlflow"]
    logger = instantiate(cfg.logger.mlflow)
    logger.log_metrics({"val/f1_macro": 0.5}, step=0)
    assert (tmp_path / "mlruns").is_dir() and logger._tracking_uri == "file:./mlruns"
    run = mlflow.MlflowClient("file:./mlruns").get_run(logger.run_id)
    assert run.data.tags["run_dir"] == str(tmp_path / "run")


def test_tensorboard_and_mlflow_both_get_scalars_hparams_and_report_images(make_cfg, tmp_path):
    store = f"file:{tmp_path / 'mlruns'}"
    cfg = make_cfg("logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={store}",
                   "trainer.max_epochs=2", "model.optimizer.lr=0.003")  # fmt: skip
    metrics = train(cfg)
    client = mlflow.MlflowClient(store)
    (experiment,) = [e for e in client.search_experiments() if e.name == "braintumor"]
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "val/f1_macro")
    assert len({m.step for m in history}) >= 3  # each of the 2 epochs, then the final value
    assert run.data.metrics["test/f1_macro"] == pytest.approx(metrics["test/f1_macro"])
    assert run.data.params["model.optimizer.lr"] == "0.003"  # the run's hyperparameters
    figures = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/confusion_matrix_test.png", "reports/confusion_matrix_val.png"} <= figures
    assert tensorboard_dir(tmp_path / "run").is_dir()  # TensorBoard still written
