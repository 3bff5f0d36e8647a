"""The shape of the code (issue 24): the wiring reads the config, arrows point down, no circles.

Measured by ``bench/architecture.py`` (static, :mod:`ast`) and ``bench/config_trace.py`` (a
real run); these tests hold the line so that the next feature lands in the right room.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _architecture():
    spec = importlib.util.spec_from_file_location(
        "architecture", ROOT / "bench" / "architecture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_pipeline_takes_the_composed_config():
    found = _architecture().measure()
    outside = [
        m for m in found["modules_receiving_config"] if not m.startswith("braintumor.pipeline")
    ]
    assert outside == []


def test_imports_point_down_the_floors_and_make_no_circle():
    found = _architecture().measure()
    assert found["upward_imports"] == []
    assert found["import_circles"] == []


def test_the_floor_order_sees_an_upward_import():
    floor = _architecture().floor
    assert floor("braintumor.runs.record") < floor("braintumor.evaluation.metrics")
    assert floor("braintumor.training.module") < floor("braintumor.pipeline.train")
    assert floor("braintumor.errors") == 0


@pytest.mark.parametrize(
    "module",
    ["braintumor.pipeline.config_check", "braintumor.runs.record", "braintumor.vocabulary"],
)
def test_the_light_modules_import_neither_torch_nor_numpy(module):
    """The config check runs before torch loads; reading a run's records (sweep tables,
    ``run_info.json``) and the metric names need neither."""
    code = f"import sys, {module}; print(sorted({{'torch', 'numpy'}} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_preprocessing_value_object_and_the_layouts_import_no_torch():
    code = (
        "import sys, braintumor.data.preprocessing, braintumor.data.sources; "
        "print(sorted({'torch', 'torchvision', 'numpy'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
