from __future__ import annotations

import pytest

from ovdet.text import TEMPLATE_SET_NAMES, get_templates, validate_templates


def test_template_sets():
    assert get_templates("single") == ["a {}."]
    assert get_templates("photo") == ["a photo of a {}."]
    ensemble = get_templates("ensemble")
    assert 20 <= len(ensemble) <= 30
    assert len(set(ensemble)) == len(ensemble)
    assert validate_templates(ensemble) == ensemble
    assert set(TEMPLATE_SET_NAMES) == {"single", "photo", "ensemble"}
    ensemble.append("mutated {}")
    assert len(get_templates("ensemble")) == len(ensemble) - 1


def test_bad_templates():
    with pytest.raises(ValueError, match="unknown template set 'fancy'.*ensemble"):
        get_templates("fancy")
    with pytest.raises(ValueError, match=r"templates\[1\] = 'no slot' must be"):
        validate_templates(["a {}.", "no slot"])
    with pytest.raises(ValueError, match="exactly one"):
        validate_templates(["{} and {}"])
    with pytest.raises(ValueError, match="empty"):
        validate_templates([])
    with pytest.raises(TypeError):
        validate_templates("a {}.")
