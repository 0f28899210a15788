"""Running the ``ovdet serve`` application: in the foreground (:func:`serve`) or in a thread
(:class:`BackgroundServer`, for tests, benchmarks and notebooks)."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BackgroundServer", "bind", "is_loopback", "serve", "url_of"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free port).

    Raises:
        OSError: the address is in use or cannot be bound (the message names it).
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port "
            "(0 picks a free one) or --host"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: Any, log_level: str):
    import uvicorn

    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
        lifespan="off",
    )


def serve(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    sock: socket.socket | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` until interrupted (Ctrl-C or SIGTERM, which raises ``SystemExit``).

    Args:
        app: the ASGI application (:func:`ovdet.serve.create_app`).
        host: address to listen on (127.0.0.1: this machine only).
        port: TCP port (0: a free one).
        sock: a socket from :func:`bind` to serve on instead of ``host`` and ``port`` (closed
            when the server stops).
        on_ready: called with the server's URL once it listens.
        log_level: uvicorn's log level.
    """
    import uvicorn

    sock = sock if sock is not None else bind(host, port)
    server = uvicorn.Server(_config(app, log_level))
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; make that an
    # exception (not the default instant exit) so that the callers' cleanup runs
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    if on_ready is not None:
        on_ready(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class BackgroundServer:
    """Serve an application in a daemon thread on a free port of 127.0.0.1.

    Example::

        with BackgroundServer(create_app(predictor)) as server:
            requests.get(server.url + "/api/info")

    Args:
        app: the ASGI application.
        host: address to listen on.
        port: TCP port (0: a free one).
        timeout: seconds to wait for the server to start or stop.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 30.0
    ) -> None:
        import uvicorn

        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = uvicorn.Server(_config(app, "warning"))
        self._timeout = timeout
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self._timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"ovdet serve: the server at {self.url} did not start")
            time.sleep(0.02)
        return self

    def close(self) -> None:
        """Stop the server and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(self._timeout)
        self._sock.close()

    def __exit__(self, *exc: object) -> None:
        self.close()
