"""The ``ovdet serve`` application over HTTP, around a fake predictor (no model)."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pycocotools.mask as mask_util

from ovdet.evaluation.results import detections_to_coco_results
from ovdet.serve import BackgroundServer, ServeLimits, SharedPredictor, create_app

from .conftest import BASE, CLASSES, FakePredictor, body, png_bytes, post_detect


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, dict(res.headers), res.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_page_and_info(fake_server):
    status, headers, body = get(fake_server.url + "/")
    assert status == 200 and b"/static/app.js" in body
    # the browser may load nothing from anywhere but this server
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "connect-src 'self'" in headers["content-security-policy"]
    for name in ("app.js", "app.css"):
        status, _, body = get(f"{fake_server.url}/static/{name}")
        assert status == 200 and body
    assert get(fake_server.url + "/static/secret.py")[0] == 404
    status, _, body = get(fake_server.url + "/api/info")
    info = json.loads(body)
    assert info["model"]["name"] == "fake-model" and info["model"]["classes"] == CLASSES
    assert info["model"]["prompts"] == ["vocabulary"]
    assert info["limits"]["max_vocabulary"] == ServeLimits().max_vocabulary
    # a page elsewhere cannot reach the local server through DNS rebinding
    assert get(fake_server.url + "/api/info", {"Host": "attacker.example"})[0] == 400


def test_detect_answers_the_coco_results_of_ovdet_detect(fake_server):
    data = png_bytes(40, 30)
    vocab = ["red circle", "green star", "purple hexagon"]
    status, answer = post_detect(
        fake_server.url + "/api/detect",
        body(data, file_name="x.png", image_id=2, vocabulary=vocab, score_thresh=0.6),
    )
    assert status == 200, answer
    assert answer["image"] == {"id": 2, "file_name": "x.png", "height": 30, "width": 40}
    assert answer["categories"] == [
        {"id": 1, "name": "red circle", "novel": False},
        {"id": 2, "name": "green star", "novel": True},
        {"id": 3, "name": "purple hexagon", "novel": True},
    ]
    out = FakePredictor().predict(np.zeros((30, 40, 3), np.uint8), vocab, score_thresh=0.6)
    expected = detections_to_coco_results(
        2, out["boxes"], out["scores"], out["labels"], [1, 2, 3], out["masks"],
        category_names=vocab, file_name="x.png",
    )  # fmt: skip
    assert answer["results"] == json.loads(json.dumps(expected))
    assert [r["category_name"] for r in answer["results"]] == ["red circle", "green star"]
    assert mask_util.decode(answer["results"][0]["segmentation"]).sum() == 15 * 20
    assert set(answer["timing"]) == {"receive_s", "decode_s", "wait_s", "predict_s", "encode_s"}


def test_errors_are_one_line_with_a_status(fake_server):
    url = fake_server.url + "/api/detect"
    status, answer = post_detect(
        url, body(png_bytes()[:50], file_name="bad.png", vocabulary=["cat"])
    )
    assert status == 400 and "cannot read bad.png" in answer["error"]
    assert post_detect(url, b"{not json\n")[0] == 400
    status, answer = post_detect(url, body(png_bytes(), vocabulary=["a"] * 2))
    assert status == 400 and "duplicate" in answer["error"]
    # a type a page elsewhere may send without asking (CORS) is refused
    raw = body(png_bytes(), vocabulary=["cat"])
    for content_type in ("text/plain", "application/json", "multipart/form-data"):
        status, answer = post_detect(url, raw, content_type=content_type)
        assert status == 415 and "application/x-ovdet-detect" in answer["error"]
    # refused from its Content-Length, before the body is read
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=30)
    conn.putrequest("POST", "/api/detect")
    conn.putheader("Content-Type", "application/x-ovdet-detect")
    conn.putheader("Content-Length", str(ServeLimits().max_body_bytes + 1))
    conn.endheaders()
    res = conn.getresponse()
    assert res.status == 413 and "cap" in json.loads(res.read())["error"]
    conn.close()
    assert fake_server.predictor.calls == 0  # nothing reached the model


def test_a_streamed_body_is_cut_at_the_cap():
    limits = ServeLimits(max_upload_bytes=1000)
    with BackgroundServer(create_app(FakePredictor(), limits=limits)) as server:
        conn = http.client.HTTPConnection(urllib.parse.urlsplit(server.url).netloc, timeout=30)
        chunks = [body(png_bytes(), vocabulary=["cat"])] + [b"x" * 4096] * 8  # no Content-Length
        conn.request(
            "POST",
            "/api/detect",
            body=iter(chunks),
            headers={"Content-Type": "application/x-ovdet-detect"},
            encode_chunked=True,
        )
        res = conn.getresponse()
        assert res.status == 413 and "cap" in json.loads(res.read())["error"]
        conn.close()


def test_one_model_shared_by_concurrent_requests():
    predictor = FakePredictor(delay=0.05)
    shared = SharedPredictor(predictor)
    with BackgroundServer(create_app(shared)) as server:
        answers = []

        def one(i):
            raw = body(png_bytes(seed=i), image_id=i + 1, vocabulary=[CLASSES[i % 4], "thing"])
            answers.append(post_detect(server.url + "/api/detect", raw))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert [a[0] for a in answers] == [200] * 6
    assert predictor.max_active == 1 and shared.inferences == 6  # one at a time, no reload
    for _, answer in answers:  # each answer has its own request's vocabulary
        i = answer["image"]["id"] - 1
        assert [c["name"] for c in answer["categories"]] == [CLASSES[i % 4], "thing"]


def test_busy_past_max_pending():
    predictor = FakePredictor()
    predictor.hold.clear()  # the first request waits inside the model
    app = create_app(predictor, limits=ServeLimits(max_pending=1))
    with BackgroundServer(app) as server:
        url = server.url + "/api/detect"
        raw = body(png_bytes(), vocabulary=["cat"])
        first = []
        t = threading.Thread(target=lambda: first.append(post_detect(url, raw)))
        t.start()
        assert predictor.entered.wait(10)
        status, answer = post_detect(url, raw)
        assert status == 503 and "busy" in answer["error"]
        predictor.hold.set()
        t.join(10)
    assert first[0][0] == 200


def test_spec_is_required_and_base_novel_unknown_without_base():
    predictor = FakePredictor()
    predictor.spec.base = []
    shared = SharedPredictor(predictor)
    assert shared.is_novel("red circle") is None and BASE
    del predictor.spec
    try:
        SharedPredictor(predictor)
    except ValueError as exc:
        assert "ModelSpec" in str(exc)
    else:
        raise AssertionError("a predictor without spec was accepted")


def test_caption_input_offered_only_to_grounding_predictors():
    class Grounding(FakePredictor):
        def predict(self, image, vocabulary=None, score_thresh=None, caption=None):
            if caption is not None:
                vocabulary = [p.strip() for p in caption.split(" and ")]
            return super().predict(image, vocabulary, score_thresh)

    assert SharedPredictor(FakePredictor()).prompts == ("vocabulary",)
    with BackgroundServer(create_app(Grounding())) as server:
        status, answer = post_detect(
            server.url + "/api/detect", body(png_bytes(), caption="red circle and blue cat")
        )
        assert status == 200, answer
        assert answer["prompt"] == "caption"
        assert [c["name"] for c in answer["categories"]] == ["red circle", "blue cat"]
