"""The public API: ``from sftlab import train, load_predictor, predict, ...``, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sftlab


def test_import_sftlab_loads_no_torch():
    code = "import sys, sftlab; print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sftlab.__all__)
def test_every_public_name_resolves(name):
    value = getattr(sftlab, name)
    assert callable(value)
    assert name in dir(sftlab)


def test_train_is_the_function_even_after_its_module_is_imported():
    import sftlab.run
    from sftlab import train

    assert train is sftlab.run.train


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'fit'"):
        sftlab.fit  # noqa: B018
