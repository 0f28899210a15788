"""The web application of ``ovdet serve``: the page, its two files and a json API.

Routes::

    GET  /                 the page (static HTML; everything it loads comes from this server)
    GET  /static/app.js    its script          GET /static/app.css   its style sheet
    GET  /api/info         the model (name, classes, base / novel, metrics, prompt kinds), limits
    POST /api/detect       a prompt + one image file -> its detections (the body's format:
                           :mod:`ovdet.serve.request`; the answer: SharedPredictor.detect)

Every response carries a Content-Security-Policy that lets the page load scripts, styles,
images and data from this server only, so the browser itself refuses anything from the
internet. Errors are ``{"error": "<one line naming what was wrong and what to do>"}`` with
status 400 (bad request, unreadable image), 413 (over a cap), 415 (not the request's
Content-Type), 503 (busy) or 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ovdet.serve.inference import SharedPredictor
from ovdet.serve.limits import ServeLimits
from ovdet.serve.request import (
    MEDIA_TYPE,
    PayloadTooLarge,
    RequestError,
    parse_detect_request,
)

__all__ = ["LOOPBACK_HOSTS", "STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
"""Host names a server bound to the loopback interface answers to (``Host`` header)."""

_STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


async def _read_body(request: Request, cap: int) -> bytes:
    """The request body, refused (413) as soon as it is over ``cap`` bytes."""
    too_large = PayloadTooLarge(
        f"the request is over this server's cap of {cap / 2**20:.1f} MB (an image file of at "
        "most --max-upload-mb and the prompt); upload a smaller or recompressed image"
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class _Server:
    """The routes' state: the shared model, the limits, the number of requests in flight."""

    def __init__(self, model: SharedPredictor, limits: ServeLimits) -> None:
        self.model = model
        self.limits = limits
        self.pending = 0  # changed on the event loop only: no lock needed
        self.files = {name: (STATIC_DIR / name).read_bytes() for name in (*_STATIC, "index.html")}

    async def page(self, request: Request) -> Response:
        return Response(self.files["index.html"], media_type="text/html", headers=_HEADERS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return _error(404, f"no file /static/{name}")
        return Response(self.files[name], media_type=_STATIC[name], headers=_HEADERS)

    async def favicon(self, request: Request) -> Response:
        return Response(status_code=204, headers=_HEADERS)

    async def info(self, request: Request) -> Response:
        return JSONResponse(
            {"model": self.model.info(), "limits": self.limits.as_dict()}, headers=_HEADERS
        )

    async def detect(self, request: Request) -> Response:
        if self.pending >= self.limits.max_pending:
            return _error(
                503,
                f"the server is busy ({self.pending} requests in progress, the cap is "
                f"{self.limits.max_pending}); try again in a moment",
            )
        self.pending += 1
        try:
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != MEDIA_TYPE:
                # a page elsewhere can only send this type after asking (CORS), and is refused
                return _error(
                    415,
                    f"/api/detect takes Content-Type {MEDIA_TYPE} (a json line, a newline, the "
                    f"image file), got {media_type or 'none'!r}",
                )
            start = time.perf_counter()
            body = await _read_body(request, self.limits.max_body_bytes)
            received = time.perf_counter() - start
            checked = await run_in_threadpool(
                parse_detect_request, body, self.limits, self.model.prompts
            )
            del body
            try:
                result = await run_in_threadpool(self.model.detect, checked)
            except (ValueError, TypeError) as exc:  # the predictor refused the prompt or image
                raise RequestError(f"{checked.file_name}: {exc}") from exc
            result["timing"] = {"receive_s": round(received, 6), **result["timing"]}
            return JSONResponse(result, headers=_HEADERS)
        except RequestError as exc:
            return _error(exc.status, str(exc))
        except Exception as exc:  # answer the page with a message; the traceback goes to the log
            logger.exception("ovdet serve: /api/detect failed")
            return _error(500, f"the server failed on this request: {type(exc).__name__}: {exc}")
        finally:
            self.pending -= 1


def create_app(
    model: Any,
    *,
    limits: ServeLimits | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
) -> Starlette:
    """The ``ovdet serve`` application around one loaded model.

    Args:
        model: a :class:`~ovdet.serve.inference.SharedPredictor`, or a predictor with a
            ``spec`` (``OVPredictor.from_pretrained(...)``), wrapped in one.
        limits: the caps of one request (default :class:`ServeLimits`).
        allowed_hosts: ``Host`` header values answered (others get 400), which keeps web
            pages elsewhere from reaching a local server through DNS rebinding; the default
            answers to loopback names only, ``None`` to any host.

    Returns:
        An ASGI application (run it with uvicorn; :func:`ovdet.serve.serve` does).
    """
    shared = model if isinstance(model, SharedPredictor) else SharedPredictor(model)
    server = _Server(shared, limits or ServeLimits())
    routes = [
        Route("/", server.page),
        Route("/static/{name}", server.static),
        Route("/favicon.ico", server.favicon),
        Route("/api/info", server.info),
        Route("/api/detect", server.detect, methods=["POST"]),
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.model = shared
    app.state.limits = server.limits
    return app
