"""Typed options reject unknown keys and wrong types with actionable messages."""

from __future__ import annotations

import pytest

from xalbench.errors import OptionsError
from xalbench.plugins import load_registry


def test_unknown_option_lists_valid_ones() -> None:
    with pytest.raises(OptionsError) as err:
        load_registry().create("model", "small-cnn", {"widht": 8})
    msg = str(err.value)
    assert "widht" in msg and "did you mean 'width'" in msg and "n_blocks" in msg


def test_wrong_type_is_rejected_and_int_widens_to_float() -> None:
    reg = load_registry()
    with pytest.raises(OptionsError, match="must be an integer"):
        reg.create("model", "small-cnn", {"width": "wide"})
    model = reg.create("model", "small-cnn", {"dropout": 0})
    assert isinstance(model.options.dropout, float)


def test_defaults_apply() -> None:
    assert load_registry().create("model", "small-cnn").options.width == 16
