"""The examples in gradflow's docstrings run, as doctests: one test per docstring that has one.

The modules are collected by walking the imported package, so the run checks the installed
gradflow (the one `import gradflow` finds from tests/), never the unbuilt source folder. A
module that cannot import here (`gradflow.backends.cuda` without the CUDA module) is one
skipped test that names the reason. Outputs compare with ELLIPSIS and NORMALIZE_WHITESPACE.

The examples assume what PyTorch's docs assume of `torch`, `nn` and `F`: `gf` (gradflow), `nn`
(gradflow.nn), `F` (gradflow.nn.functional) and `np` (NumPy) are imported.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctest_params():
    finder = doctest.DocTestFinder(exclude_empty=True)
    for info in pkgutil.walk_packages(gf.__path__, "gradflow."):
        try:
            module = importlib.import_module(info.name)
        except ImportError as error:
            reason = f"{info.name} does not import here: {error}"
            yield pytest.param(None, id=info.name, marks=pytest.mark.skip(reason=reason))
            continue
        for test in sorted(finder.find(module, info.name), key=lambda t: t.name):
            if test.examples:
                yield pytest.param(test, id=test.name)


@pytest.mark.parametrize("test", list(_doctest_params()))
def test_docstring_examples_run(test):
    test.globs.update(gf=gf, nn=nn, F=F, np=np)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    runner.run(test, out=report.append, clear_globs=True)
    assert runner.failures == 0, "".join(report)


def test_doctests_come_from_the_package_under_test():
    """The walk above finds the package's own modules, examples included (a guard against an
    empty collection that would pass silently)."""
    names = [p.id for p in _doctest_params()]
    assert any(name.startswith("gradflow.nn.") for name in names)
