"""ovdet.evaluation.predictions: loading detections and joining them to the ground truth (the
user-facing kinds are in tests/bad_inputs/test_evaluate_and_data.py)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from ovdet.evaluation.predictions import (
    JoinReport,
    PredictionFormatError,
    Predictions,
    join_predictions,
    load_predictions,
)


def test_load_kinds(tmp_path, perfect_results, gt_dict):
    as_list = tmp_path / "r.json"
    as_list.write_text(json.dumps(perfect_results))
    p = load_predictions(as_list)
    assert (p.kind, len(p.results), p.source) == ("results", 35, str(as_list))
    dataset = {
        "images": [{"id": 7, "file_name": "x/000000000089.jpg"}],
        "categories": [{"id": 3, "name": "person"}],
        "annotations": [
            {"image_id": 7, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.5, "id": 1}
        ],
    }
    d = load_predictions(dataset, source="dets.json")
    assert d.kind == "dataset" and d.image_names == {7: "x/000000000089.jpg"}
    assert d.category_names == {3: "person"}
    pth = tmp_path / "instances_predictions.pth"
    torch.save([{"image_id": 89, "instances": [dict(perfect_results[0], category_id=0)]}], pth)
    t = load_predictions(pth)
    assert t.kind == "detectron2-pth" and t.contiguous_categories and len(t.results) == 1
    with pytest.warns(UserWarning, match="cover 1 of the 6 ground-truth images"):
        joined = join_predictions(dataset, gt_dict)
    assert joined.results[0]["image_id"] == 89 and joined.results[0]["category_id"] == 1
    assert joined.report.image_matches == {"basename": 1}


def test_join_by_name_report(gt_dict, perfect_results):
    names = {c["id"]: c["name"] for c in gt_dict["categories"]}
    files = {im["id"]: im["file_name"] for im in gt_dict["images"]}
    named = [
        dict(
            r,
            image_id=1000 + k,
            category_id=0,
            category_name=names[r["category_id"]],
            file_name=f"/data/{files[r['image_id']]}",
        )
        for k, r in enumerate(perfect_results)
    ]
    joined = join_predictions(Predictions(named, "named.json"), gt_dict)
    report = joined.report
    assert isinstance(report, JoinReport)
    assert (report.categories_by, report.images_by) == ("name", "file name")
    assert report.category_names == 8 and report.category_ids_changed == 8
    assert report.image_matches == {"basename": 5}
    assert report.predictions == 35 and report.verification == ""
    ids = [(r["image_id"], r["category_id"]) for r in joined.results]
    assert ids == [(r["image_id"], r["category_id"]) for r in perfect_results]
    assert all("file_name" not in r and "category_name" not in r for r in joined.results)


def test_join_by_ids_is_verified_or_trusted(gt_dict, perfect_results):
    joined = join_predictions(perfect_results, gt_dict)
    assert joined.report.verification.startswith("verified image ids (100% of top detections")
    trusted = join_predictions(perfect_results, gt_dict, trust_ids=True)
    assert trusted.report.verification == "join by ids not verified (trusted)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        few = join_predictions(perfect_results[:3], gt_dict)
    assert any("could not verify the join by ids" in str(w.message) for w in caught)
    assert "NOT verified" in few.report.verification


def test_drop_unknown_and_geometry_warnings(gt_dict, perfect_results):
    extra = perfect_results + [dict(perfect_results[0], image_id=12345)]
    with pytest.raises(PredictionFormatError, match=r"image ids \[12345\]"):
        join_predictions(extra, gt_dict)
    with pytest.warns(UserWarning, match="dropped 1 predictions"):
        joined = join_predictions(extra, gt_dict, drop_unknown=True)
    assert joined.report.dropped == 1 and joined.report.predictions == 35
    tiny = [dict(r, bbox=[0.1, 0.1, 0.2, 0.2]) for r in perfect_results]
    with pytest.raises(PredictionFormatError, match="look normalised"):
        join_predictions(tiny, gt_dict, trust_ids=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        joined = join_predictions(tiny, gt_dict, trust_ids=True, geometry_errors=False)
    assert len(joined.results) == 35 and any("look normalised" in str(w.message) for w in caught)
