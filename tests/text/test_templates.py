from __future__ import annotations

import json

import pytest

from ovdet.text import TEMPLATE_SET_NAMES, get_templates, validate_templates
from ovdet.text.templates import article, fill_template


def test_template_sets():
    assert get_templates("single") == ["a {}."]
    assert get_templates("photo") == ["a photo of a {}."]
    ensemble = get_templates("ensemble")
    assert 20 <= len(ensemble) <= 30
    assert len(set(ensemble)) == len(ensemble)
    assert validate_templates(ensemble) == ensemble
    assert set(TEMPLATE_SET_NAMES) == {"single", "photo", "ensemble", "vild", "rkd", "detic"}
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


def test_method_template_sets():
    # RKD: 'a photo of a {}'.format(name) (tools/dump_clip_features.py --prompt photo); Detic:
    # 'a ' + name (--prompt a): no full stop in either
    assert get_templates("rkd") == ["a photo of a {}"]
    assert get_templates("detic") == ["a {}"]
    vild = get_templates("vild")
    assert len(vild) == 63 and len(set(vild)) == 63
    assert validate_templates(vild) == vild
    # the demo's FLAGS.this_is: "This is " before every prompt starting with "a" or "the"
    assert vild[:3] == [
        "There is {article} {} in the scene.",
        "There is the {} in the scene.",
        "This is a photo of {article} {} in the scene.",
    ]
    assert "itap of my {}." in vild and "This is an embroidered {}." in vild
    assert vild[-1] == "This is a painting of a {}."
    assert all(t.startswith(("There is", "itap", "This is ")) for t in vild)
    vild.append("mutated {}")
    assert len(get_templates("vild")) == 63


def test_vild_data_file_names_its_source_and_licence():
    from ovdet.text import templates

    data = json.loads((templates._PROMPTS_DIR / "vild_templates.json").read_text("utf-8"))
    assert "tensorflow/tpu" in data["source"] and "ViLD_demo.ipynb" in data["source"]
    assert data["license"].startswith("Apache-2.0")
    assert len(data["templates"]) == 63


def test_article_filling_as_vild():
    assert article("apple") == "an" and article("umbrella") == "an" and article("dog") == "a"
    assert article("Apple") == "a"  # the demo checks lower-case vowels only
    assert fill_template("There is {article} {} in the scene.", "elephant") == (
        "There is an elephant in the scene."
    )
    assert fill_template("a photo of {article} {}.", "cat") == "a photo of a cat."
    assert fill_template("a {}.", "{article}") == "a {article}."  # names are kept as given
