"""Shared test setup: the hypothesis profile and the `cuda` marker's skip."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

import gradflow as gf

sys.path.insert(0, os.path.dirname(__file__))  # `import strategies` from any test file

settings.register_profile(
    "gradflow",
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("gradflow"), max_examples=300)
settings.load_profile(os.environ.get("GRADFLOW_HYPOTHESIS_PROFILE", "gradflow"))


def pytest_collection_modifyitems(config, items):
    if gf.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f"no CUDA GPU: {gf.cuda.unavailable_reason()}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests may change the default dtype or the grad mode; put them back afterwards."""
    default = gf.get_default_dtype()
    yield
    gf.set_default_dtype(default)
    gf.set_grad_enabled(True)
