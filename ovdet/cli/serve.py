"""``ovdet serve``: a local web page to try a model in a browser.

    ovdet serve                              # the best shipped model, http://127.0.0.1:7860
    ovdet serve --model NAME --port 8080     # any named model (`ovdet models`) or a path
    ovdet serve --host 0.0.0.0               # reachable from other machines (take care)

The page and the server are described in :mod:`ovdet.serve`.
"""

from __future__ import annotations

import argparse
import sys

from ovdet.utils.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet serve",
        description="Serve a local web page to try a model: drop images, type a vocabulary, "
        "see the detections, download them as COCO json.",
    )
    p.add_argument(
        "--model",
        default=None,
        help="a named model (`ovdet models`) or a registered model's path (default: the best "
        "shipped model)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes "
        "the model to the network)",
    )
    p.add_argument("--port", type=int, default=7860, help="TCP port (default 7860; 0: any free)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    limits = p.add_argument_group("limits of one request")
    limits.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest image file (default 20)"
    )
    limits.add_argument(
        "--max-megapixels",
        type=float,
        default=12.0,
        help="largest image, width x height in millions of pixels (default 12)",
    )
    limits.add_argument(
        "--max-vocabulary", type=int, default=100, help="most class names (default 100)"
    )
    limits.add_argument(
        "--max-pending",
        type=int,
        default=8,
        help="most requests at once, running or waiting for the model; more are answered "
        "'busy' (default 8)",
    )
    return p


def _limits(args: argparse.Namespace):
    from ovdet.serve import ServeLimits

    for option, value in (
        ("--max-upload-mb", args.max_upload_mb),
        ("--max-megapixels", args.max_megapixels),
    ):
        if not value > 0:
            raise InputError(f"{option} must be > 0, got {value}")
    for option, count in (
        ("--max-vocabulary", args.max_vocabulary),
        ("--max-pending", args.max_pending),
    ):
        if count < 1:
            raise InputError(f"{option} must be >= 1, got {count}")
    return ServeLimits(
        max_upload_bytes=max(1, int(args.max_upload_mb * 2**20)),
        max_pixels=max(1, int(args.max_megapixels * 1e6)),
        max_vocabulary=args.max_vocabulary,
        max_pending=args.max_pending,
    )


def load_predictor(model: str | None, device: str):
    """The predictor of a named model (None: the default model), with its ``spec``."""
    from ovdet.predictor import OVPredictor

    return OVPredictor.from_pretrained(model, device=device)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {args.port}")
    limits = _limits(args)

    from ovdet.serve.tempdir import private_temp_dir

    # first: what the libraries imported from here on write goes to the server's temp folder
    with private_temp_dir():
        from ovdet.serve import create_app, serve
        from ovdet.serve.app import LOOPBACK_HOSTS
        from ovdet.serve.server import bind, is_loopback

        sock = bind(args.host, args.port)  # a port in use fails now, not after loading
        try:
            predictor = load_predictor(args.model, args.device)
            local = is_loopback(args.host)
            hosts = LOOPBACK_HOSTS if local else None
            app = create_app(predictor, limits=limits, allowed_hosts=hosts)
            if not local:
                print(
                    f"ovdet serve: listening on {args.host}: anyone who can reach this machine "
                    "can use the model (--host 127.0.0.1 keeps it local)",
                    file=sys.stderr,
                )
            name = app.state.model.info()["name"]

            def ready(url: str) -> None:
                print(f"ovdet serve: {name} on {url}  (Ctrl-C to stop)", flush=True)

            serve(app, sock=sock, on_ready=ready)
        finally:
            sock.close()
    return 0
