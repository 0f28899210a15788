#!/usr/bin/env python3
"""Latency of ``ovdet serve`` against calling ``OVPredictor.predict`` directly; prints JSON.

    .venv/bin/python tools/benchmark_serve.py [--model NAME] [--device cpu] [--repeats 10]

One predictor is loaded and used both ways, alternately, on two OV-Shapes scenes saved as
PNG files: 160 x 160 pixels (the shipped models' size) and 800 x 1333 (a photo's size, which
the model resizes but whose masks are pasted, encoded and sent at full size):

* ``direct_ms``: ``predictor.predict(path, vocabulary, score_thresh)`` (reads the file too);
* ``http_ms``: a client that does what the page does, in Python: POST ``/api/detect`` (a json
  line and the file's bytes) to the server (running in this process, on 127.0.0.1), read the
  json answer; ``server_ms`` splits the server's part (receive the body, decode the image,
  wait for the model, predict, encode the results);
* ``page_ms``: the page itself in headless Chromium (when installed): from choosing the file
  to its card drawn (reading the file, the request, drawing boxes and masks on the canvas).

``transfer_ms`` is what the request adds to the server's work on the image (``http_ms``
minus ``server_ms.work``: decode, wait, predict, encode): sending the body over loopback and
reading it, and the json of the answer. The target is ``http_ms <= 1.2 * direct_ms +
transfer_ms``, i.e. the server's work within 1.2x of the direct call. Times are medians over
``--repeats`` runs after two warm-up runs; ratios are medians of the ratios of runs made one
after the other (on a busy machine the load changes between runs more than between paths).

``--screenshot docs/serve.png`` also saves the page with two 160-px scenes detected (the
README's picture).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

THRESH = 0.3
TARGET = 1.2
_SIZES = {"160px": 160, "800x1333": (800, 1333)}

_PAGE_TIMER = """() => {
  window.__times = [];
  document.addEventListener("change", () => { window.__t0 = performance.now(); }, true);
  new MutationObserver(() => {
    const card = document.querySelector("article.card[data-status='done']");
    if (card && window.__t0 !== null) {
      window.__times.push(performance.now() - window.__t0);
      window.__t0 = null;
    }
  }).observe(document.getElementById("results"), {subtree: true, attributes: true,
                                                  childList: true});
}"""


def _scene(size, path: Path, index: int = 5) -> None:
    from PIL import Image

    from ovdet.data.synthetic.config import OVShapesConfig
    from ovdet.data.synthetic.scene import OVShapesGenerator

    generator = OVShapesGenerator(OVShapesConfig(image_size=size))
    scene = generator.scene(seed=0, split="val", index=index)
    Image.fromarray(scene.image).save(path)


def _post(url: str, body: bytes) -> dict:
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-ovdet-detect"}
    )
    with urllib.request.urlopen(req, timeout=120) as res:
        return json.loads(res.read())


def _median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 2)


def _browser(url: str, files: dict[str, Path], vocab: list[str], repeats: int) -> dict:
    """Median page latency per image, or {} without Chromium."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return {}
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#vocabulary", ", ".join(vocab))
            page.eval_on_selector(
                "#score", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                str(THRESH),
            )  # fmt: skip
            page.evaluate(_PAGE_TIMER)
            for name, path in files.items():
                page.evaluate("() => { window.__times = []; }")
                for _ in range(repeats + 2):
                    page.click("#clear")
                    page.set_input_files("#files", str(path))
                    page.wait_for_selector("article.card[data-status='done']")
                times = page.evaluate("() => window.__times")[2:]
                out[name] = round(statistics.median(times), 2)
        finally:
            browser.close()
    return out


def _screenshot(url: str, files: list[Path], path: Path) -> None:
    """The page with ``files`` detected (the model's classes, score >= THRESH), saved to
    ``path`` as PNG."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--screenshot needs Chromium (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 960})
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.set_input_files("#files", [str(f) for f in files])
            # (the page's Content-Security-Policy forbids evaluating strings: wait on the DOM)
            last = f"article.card[data-image-id='{len(files)}'][data-status='done']"
            page.wait_for_selector(f"body[data-busy='0'] {last}")
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))  # the first screen: controls and a result
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="named model (default: the best shipped)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per image and path")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium page")
    parser.add_argument("--screenshot", type=Path, help="also save the page as this PNG")
    args = parser.parse_args(argv)

    import torch

    from ovdet.predictor import OVPredictor
    from ovdet.serve import BackgroundServer, create_app

    predictor = OVPredictor.from_pretrained(args.model, device=args.device)
    vocab = list(predictor.spec.classes or [])
    if not vocab:
        parser.error(f"model {predictor.spec.name} names no classes: nothing to detect")
    report = {
        "model": predictor.spec.name,
        "device": str(predictor.device),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "score_thresh": THRESH,
        "vocabulary_size": len(vocab),
        "repeats": args.repeats,
        "target": f"http_ms <= {TARGET} * direct_ms + transfer_ms",
        "images": [],
    }
    with tempfile.TemporaryDirectory(prefix="ovdet-bench-serve-") as tmp:
        files = {}
        for name, size in _SIZES.items():
            files[name] = Path(tmp) / f"{name}.png"
            _scene(size, files[name])
        with BackgroundServer(create_app(predictor)) as server:
            url = server.url + "/api/detect"
            for name, path in files.items():
                data = path.read_bytes()
                direct, http, server_parts = [], [], []
                detections = response_bytes = request_bytes = 0
                for i in range(args.repeats + 2):  # alternate: both see the same load
                    start = time.perf_counter()
                    out = predictor.predict(str(path), vocabulary=vocab, score_thresh=THRESH)
                    t_direct = time.perf_counter() - start
                    start = time.perf_counter()
                    head = {"file_name": path.name, "vocabulary": vocab, "score_thresh": THRESH}
                    body = json.dumps(head).encode() + b"\n" + data
                    answer = _post(url, body)
                    t_http = time.perf_counter() - start
                    if i < 2:
                        continue
                    direct.append(t_direct)
                    http.append(t_http)
                    server_parts.append(answer["timing"])
                    detections = len(out["scores"])
                    assert len(answer["results"]) == detections, "page and predictor differ"
                    request_bytes, response_bytes = len(body), len(json.dumps(answer))
                parts = {
                    k.removesuffix("_s"): _median_ms([t[k] for t in server_parts])
                    for k in server_parts[0]
                }
                work = [sum(v for k, v in t.items() if k != "receive_s") for t in server_parts]
                transfer = [h - w for h, w in zip(http, work)]
                entry = {
                    "image": name,
                    "pixels": list(out["image_size"]),
                    "file_bytes": len(data),
                    "request_bytes": request_bytes,
                    "response_bytes": response_bytes,
                    "detections": detections,
                    "masks": "masks" in out,
                    "direct_ms": _median_ms(direct),
                    "http_ms": _median_ms(http),
                    "server_ms": dict(parts, work=_median_ms(work)),
                    "transfer_ms": _median_ms(transfer),
                }
                # ratios of runs made one after the other (medians of them): on a busy
                # machine the load changes between runs more than between the two paths
                pairs = list(zip(direct, http, work, transfer))
                entry["http_over_direct"] = round(
                    statistics.median(h / d for d, h, _, _ in pairs), 3
                )
                entry["server_work_over_direct"] = round(
                    statistics.median(w / d for d, _, w, _ in pairs), 3
                )
                entry["within_target"] = (
                    statistics.median((h - t) / d for d, h, _, t in pairs) <= TARGET
                )
                report["images"].append(entry)
            if not args.no_browser:
                pages = _browser(server.url, files, vocab, args.repeats)
                for entry in report["images"]:
                    if entry["image"] in pages:
                        entry["page_ms"] = pages[entry["image"]]
                        entry["page_over_direct"] = round(entry["page_ms"] / entry["direct_ms"], 3)
            if args.screenshot is not None:
                shots = [Path(tmp) / f"scene{i}.png" for i in (5, 2)]
                for i, shot in zip((5, 2), shots):
                    _scene(160, shot, index=i)
                _screenshot(server.url, shots, args.screenshot)
                report["screenshot"] = str(args.screenshot)
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
