import json

import pytest
from detectron2.data import DatasetCatalog

from ovdet.data.captions import load_captions
from ovdet.data.synthetic import generate_ov_shapes, register_ov_shapes


def test_captions_merged_into_registered_dicts(tmp_path):
    generate_ov_shapes(tmp_path, num_train=3, num_val=2, seed=1, progress=False)
    names = register_ov_shapes(tmp_path, prefix="captest", replace=True)
    dicts = DatasetCatalog.get(next(n for n in names if n.endswith("_train_base")))
    caps = load_captions(tmp_path / "captions_train.json")
    assert len(dicts) == 3
    for d in dicts:
        assert d["captions"] and d["captions"] == caps[d["image_id"]]


def test_bad_captions_file(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"annotations": [{"image_id": 1}]}))
    with pytest.raises(ValueError, match=r"annotations\[0\] has no field 'caption'"):
        load_captions(bad)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_captions(tmp_path / "nope.json")
