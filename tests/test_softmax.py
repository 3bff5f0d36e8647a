"""The calibrated softmax: numpy and tensors agree, the numpy one needs no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from braintumor.softmax import softmax, softmax_tensor


def test_the_numpy_and_tensor_softmax_agree_and_sum_to_one():
    logits = np.random.default_rng(0).normal(size=(5, 4)) * 30
    probs = softmax(logits, 2.5)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(1), 1.0)
    tensor = softmax_tensor(torch.from_numpy(logits), 2.5).numpy()
    np.testing.assert_allclose(probs, tensor, rtol=1e-12)
    assert np.array_equal(probs.argmax(1), logits.argmax(1))  # the class never changes


def test_the_numpy_softmax_survives_huge_logits():
    assert np.array_equal(softmax(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])


def test_the_softmax_module_imports_no_torch():
    code = "import sys, braintumor.softmax; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
