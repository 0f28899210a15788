"""``ovdet serve`` in a real browser: the server started as a user starts it, headless
Chromium (Debian's ``chromium``, driven by Playwright) uploads images, sets a vocabulary and
moves the slider; what the page draws, lists and downloads must be what ``OVPredictor``
finds in the same image. Every request the browser makes is seen: anything but the local
server is blocked, and none may be attempted.

Skipped only when Chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image

from ovdet.evaluation.results import detections_to_coco_results
from ovdet.utils.visualize import class_colour

pytestmark = pytest.mark.timeout(600)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
THRESH, HIGHER, LOWER = 0.3, 0.6, 0.1


def _chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _shipped_model() -> str:
    """The best shipped model (the default when it is shipped: ``ovdet serve``'s)."""
    from ovdet.model_zoo import list_models

    return next(spec.name for spec in list_models() if spec.kind == "bundle")


def _start_server(args: list[str], root: Path) -> tuple[subprocess.Popen, str, dict[str, Path]]:
    """``python -m ovdet.cli serve ARGS`` with its own empty home, temp and working folders;
    returns the process, its URL and the folders."""
    dirs = {name: root / name for name in ("home", "tmp", "cwd")}
    for d in dirs.values():
        d.mkdir(parents=True)
    env = dict(os.environ, HOME=str(dirs["home"]), TMPDIR=str(dirs["tmp"]))
    env.pop("XDG_CACHE_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ovdet.cli", "serve", "--port", "0", "--device", "cpu", *args],
        cwd=dirs["cwd"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError(f"ovdet serve exited: {proc.stderr.read()}") from None
            continue
        if " on http://" in line:
            return proc, line.split(" on ", 1)[1].split()[0], dirs
    proc.kill()
    raise AssertionError("ovdet serve did not print its URL in 240 s")


def _scene(path: Path) -> None:
    from ovdet.data.synthetic.config import OVShapesConfig
    from ovdet.data.synthetic.scene import OVShapesGenerator

    scene = OVShapesGenerator(OVShapesConfig(image_size=160)).scene(seed=0, split="val", index=5)
    Image.fromarray(scene.image).save(path)


def _expected(predictor, path: Path, vocab: list[str], thresh: float) -> list[dict]:
    out = predictor.predict(str(path), vocabulary=vocab, score_thresh=thresh)
    results = detections_to_coco_results(
        1,
        out["boxes"],
        out["scores"],
        out["labels"],
        list(range(1, len(vocab) + 1)),
        out.get("masks"),
        category_names=vocab,
        file_name=path.name,
    )
    return json.loads(json.dumps(results))


def _assert_same(got: list[dict], expected: list[dict], where: str) -> None:
    """Same detections, in the same order, numbers to float precision (two processes): every
    field of ``expected`` a downloaded file must have; the fields a table row shows."""
    assert [r["category_name"] for r in got] == [r["category_name"] for r in expected], where
    row = "kind" in got[0] if got else False
    for g, e in zip(got, expected):
        assert g["category_id"] == e["category_id"], where
        assert g["score"] == pytest.approx(e["score"], abs=1e-5), where
        assert g["bbox"] == pytest.approx(e["bbox"], abs=1e-3), where
        if row:  # drawn with its mask or not
            assert g["mask"] == ("segmentation" in e), where
            continue
        assert set(e) <= set(g), where
        assert (g["image_id"], g["file_name"]) == (e["image_id"], e["file_name"]), where
        if "segmentation" in e:
            iou = mask_util.iou([g["segmentation"]], [e["segmentation"]], [0])[0][0]
            assert iou > 0.99, where


_ROWS = """rows => rows.map(r => ({category_name: r.dataset.name, kind: r.dataset.kind,
    score: Number(r.dataset.score), bbox: JSON.parse(r.dataset.bbox),
    category_id: Number(r.dataset.categoryId), mask: r.dataset.mask === "1"}))"""

# the canvas scale and the pixels under the four sides of each listed detection's box
_EDGES = """card => {
  const canvas = card.querySelector("canvas");
  const k = Number(canvas.dataset.scale);
  const ctx = canvas.getContext("2d");
  const line = (x, y, w, h) => {
    const px = ctx.getImageData(Math.floor(x), Math.floor(y), Math.max(1, Math.floor(w)),
                                Math.max(1, Math.floor(h))).data;
    const out = [];
    for (let i = 0; i < px.length; i += 4) out.push([px[i], px[i + 1], px[i + 2]]);
    return out;
  };
  const sides = [...card.querySelectorAll("tr.detection")].map((row) => {
    const [x, y, w, h] = JSON.parse(row.dataset.bbox).map((v) => v * k);
    return [...line(x, y, 1, h), ...line(x + w, y, 1, h), ...line(x, y, w, 1),
            ...line(x, y + h, w, 1)];
  });
  return {scale: k, sides};
}"""


def _assert_drawn(rows: list[dict], edges: dict) -> None:
    """Each box's outline shows its class colour, unless a better-scored box drawn over it
    has all four sides within 2 canvas pixels of its sides."""
    k = edges["scale"]
    for i, (row, pixels) in enumerate(zip(rows, edges["sides"])):
        x, y, w, h = (v * k for v in row["bbox"])
        hidden = any(
            np.abs(np.array([x, y, x + w, y + h]) - np.array([a, b, a + c, b + d]) * k).max() <= 2
            for a, b, c, d in (r["bbox"] for r in rows[:i])
        )
        colour = np.array(class_colour(row["category_id"] - 1))
        matches = int((np.abs(np.array(pixels) - colour).max(axis=1) <= 3).sum())
        assert hidden or matches >= 4, f"{row['category_name']} {row['bbox']}: no box drawn"


def _set_slider(page, value: float) -> None:
    page.eval_on_selector(
        "#score",
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
        str(value),
    )


def test_page_matches_the_predictor_in_chromium(tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    from ovdet.model_zoo import DEFAULT_MODEL
    from ovdet.predictor import OVPredictor

    started = time.perf_counter()
    name = _shipped_model()
    proc, url, dirs = _start_server(
        [] if name == DEFAULT_MODEL else ["--model", name], tmp_path / "server"
    )
    try:
        assert url.startswith("http://127.0.0.1:"), url  # local unless told otherwise
        # what its libraries write goes to its own temp folder, inside $TMPDIR
        assert [p.name[:12] for p in dirs["tmp"].iterdir()] == ["ovdet-serve-"]
        predictor = OVPredictor.from_pretrained(name, device="cpu")
        spec = predictor.spec
        images = tmp_path / "images"
        images.mkdir()
        scene, broken = images / "scene.png", images / "broken.png"
        _scene(scene)
        broken.write_bytes(scene.read_bytes()[:300])  # a truncated PNG
        # a name that is no class, in words the bundle knows (it refuses others)
        vocab = ["purple cross", "purple triangle", "green triangle", "green square",
                 "purple star", "yellow stars"]  # fmt: skip
        seen, blocked = [], []

        def route(r):
            seen.append(r.request.url)
            if r.request.url.startswith(url + "/"):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                # no name resolves but the server's address: nothing else can be reached
                args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
            )
            try:
                context = browser.new_context(accept_downloads=True)
                context.route("**/*", route)
                page = context.new_page()
                page.goto(url + "/")
                page.wait_for_selector("body[data-ready='1']")
                assert page.inner_text("#model-name") == spec.name
                page.fill("#vocabulary", ", ".join(vocab))
                _set_slider(page, THRESH)
                page.set_input_files("#files", [str(scene), str(broken)])
                card = f"article.card[data-file-name='{scene.name}']"
                page.wait_for_selector(f"{card}[data-status='done']")
                bad = page.wait_for_selector(
                    f"article.card[data-file-name='{broken.name}'][data-status='error']"
                )
                page.wait_for_selector("body[data-busy='0']")

                # a corrupt upload: its card says what is wrong with which file
                message = bad.inner_text()
                assert "cannot read broken.png" in message and "corrupt" in message

                # listed and drawn: the predictor's detections, base and novel told apart
                rows = page.eval_on_selector_all(f"{card} tr.detection", _ROWS)
                expected = _expected(predictor, scene, vocab, THRESH)
                assert expected, "the model finds nothing: choose another scene or vocabulary"
                _assert_same(rows, expected, f"listed at {THRESH}")
                for row in rows:
                    assert row["kind"] == ("base" if row["category_name"] in spec.base else "novel")
                _assert_drawn(rows, page.eval_on_selector(card, _EDGES))

                # raising the slider filters what the page has: no new request
                detects = sum(u.endswith("/api/detect") for u in seen)
                _set_slider(page, HIGHER)
                rows = page.eval_on_selector_all(f"{card} tr.detection", _ROWS)
                _assert_same(rows, _expected(predictor, scene, vocab, HIGHER), f"at {HIGHER}")
                assert sum(u.endswith("/api/detect") for u in seen) == detects

                # lowering it below the threshold the results were computed at asks again
                _set_slider(page, LOWER)
                page.wait_for_selector(f"{card}[data-status='done'][data-thresh='{LOWER}']")
                page.wait_for_selector("body[data-busy='0']")
                rows = page.eval_on_selector_all(f"{card} tr.detection", _ROWS)
                expected = _expected(predictor, scene, vocab, LOWER)
                _assert_same(rows, expected, f"listed at {LOWER}")

                # the downloads are the files of `ovdet detect` (the unreadable image left out)
                with page.expect_download() as info:
                    page.click("#download-results")
                results = json.loads(Path(info.value.path()).read_text())
                assert all(set(r) == set(expected[0]) for r in results)
                _assert_same(results, expected, "results.json")
                with page.expect_download() as info:
                    page.click("#download-detections")
                dataset = json.loads(Path(info.value.path()).read_text())
                height, width = np.asarray(Image.open(scene)).shape[:2]
                assert dataset["images"] == [
                    {"id": 1, "file_name": scene.name, "height": height, "width": width}
                ]
                assert dataset["categories"] == [
                    {"id": i + 1, "name": n} for i, n in enumerate(vocab)
                ]
                annotations = dataset["annotations"]
                _assert_same(annotations, expected, "detections.json")
                for i, a in enumerate(annotations):
                    assert (a["id"], a["iscrowd"]) == (i + 1, 0)
                    assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3])
            finally:
                browser.close()
        assert not blocked, f"the page tried to reach {blocked}"
        assert seen and all(u.startswith(url + "/") for u in seen)
    finally:
        proc.terminate()
        proc.wait(30)
    # nothing is left: not in its working folder, its home or $TMPDIR (its folder removed)
    written = [str(p) for d in dirs.values() for p in d.rglob("*")]
    assert not written, written
    print(f"browser test: {time.perf_counter() - started:.1f} s")
