"""``ovdet serve``: a local web page to try a model in a browser.

A person drops in images, types a vocabulary (or a caption, for a grounding model), moves a
score slider and sees the boxes (and masks) drawn, base and novel classes told apart (novel:
dashed outline and ``*``); the results download as the ``results.json`` and
``detections.json`` that ``ovdet detect`` writes.

    ovdet serve                          # the best shipped model on http://127.0.0.1:7860
    ovdet serve --model NAME --port 8080

Why not Gradio, the field's usual demo tool: Gradio pulls in a large dependency tree (its
own FastAPI server, front-end bundle, analytics and sharing code) for one page; its default
themes load fonts from Google Fonts and it checks for new versions on the network, which an
offline tool must switch off piece by piece; and the limits a public demo needs (pixels read
from the header before decoding, a cap on pending requests, nothing written outside one temp
folder) would sit around it rather than in it. A 36 kB page of our own on Starlette (already
the base of Gradio's server) does the same job with every limit in our code and tests, and
is driven in a real browser by ``tests/serve/test_browser.py``.

Design (see :mod:`ovdet.serve.app` for the routes):

* **Offline.** A small Starlette application serves one static page written for it (HTML,
  CSS and a script, no framework, fonts of the system) and a json API; the page's
  Content-Security-Policy allows nothing but this server.
* **One model.** Loaded once; concurrent requests share it through a lock around inference
  (:class:`~ovdet.serve.inference.SharedPredictor`); more than ``max_pending`` requests at
  once are answered "busy".
* **Caps** (:class:`~ovdet.serve.limits.ServeLimits`): upload bytes, image pixels (read from
  the header, before decoding), vocabulary size and name length, caption length.
* **No files.** Uploads are held in memory and results returned to the page; downloads are
  made by the page. What imported libraries write (matplotlib's font cache, ``tempfile``)
  goes to the server's own temp folder, removed when it stops
  (:func:`~ovdet.serve.tempdir.private_temp_dir`).
* **Local.** Bound to 127.0.0.1 and answering to loopback host names only unless told
  otherwise (``--host``).
* The score slider filters the detections already computed when raised and asks the server
  again when lowered below the threshold they were computed at, so the page shows exactly
  ``OVPredictor.predict(image, vocabulary, score_thresh=slider)``.
"""

import importlib
from typing import Any

# the package's names are loaded when first used (PEP 562), so that importing
# ovdet.serve.tempdir does not import the libraries that write caches (see there)
_EXPORTS = {
    "BackgroundServer": "ovdet.serve.server",
    "DetectRequest": "ovdet.serve.request",
    "Prompt": "ovdet.serve.request",
    "RequestError": "ovdet.serve.request",
    "ServeLimits": "ovdet.serve.limits",
    "SharedPredictor": "ovdet.serve.inference",
    "create_app": "ovdet.serve.app",
    "model_prompts": "ovdet.serve.inference",
    "parse_detect_request": "ovdet.serve.request",
    "private_temp_dir": "ovdet.serve.tempdir",
    "serve": "ovdet.serve.server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ovdet.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
