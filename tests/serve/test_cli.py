"""``ovdet serve``'s options (the server itself is run by the browser test)."""

from __future__ import annotations

import socket

import pytest

from ovdet.cli import serve as serve_cli
from ovdet.serve.app import LOOPBACK_HOSTS

from .conftest import FakePredictor


@pytest.fixture
def calls(monkeypatch):
    """Run ``main`` without a model or a listening server; record what it was given."""
    from ovdet.serve import create_app as real_create_app

    seen: dict = {}

    def load(model, device):
        seen.update(model=model, device=device)
        return FakePredictor()

    def create_app(predictor, *, limits, allowed_hosts):
        seen.update(limits=limits, allowed_hosts=allowed_hosts)
        return real_create_app(predictor, limits=limits, allowed_hosts=allowed_hosts)

    def bind(host, port):
        seen.update(host=host, port=port)
        return socket.create_server(("127.0.0.1", 0))

    def serve(app, *, sock, on_ready):
        seen.update(served=app)
        on_ready(f"http://{seen['host']}:{seen['port']}")

    monkeypatch.setattr(serve_cli, "load_predictor", load)
    monkeypatch.setattr("ovdet.serve.create_app", create_app)
    monkeypatch.setattr("ovdet.serve.serve", serve)
    monkeypatch.setattr("ovdet.serve.server.bind", bind)
    return seen


def test_defaults_serve_the_default_model_on_loopback(calls, capsys):
    assert serve_cli.main([]) == 0
    assert calls["model"] is None  # OVPredictor.from_pretrained(None): the best shipped model
    assert (calls["host"], calls["port"], calls["device"]) == ("127.0.0.1", 7860, "auto")
    assert calls["allowed_hosts"] == LOOPBACK_HOSTS
    limits = calls["limits"]
    assert (limits.max_upload_bytes, limits.max_pixels, limits.max_vocabulary) == (
        20 * 2**20,
        12_000_000,
        100,
    )
    assert "fake-model on http://127.0.0.1:7860" in capsys.readouterr().out


def test_options(calls, capsys):
    argv = ["--model", "my-model", "--host", "0.0.0.0", "--port", "0", "--device", "cpu",
            "--max-upload-mb", "1.5", "--max-megapixels", "2", "--max-vocabulary", "7",
            "--max-pending", "3"]  # fmt: skip
    assert serve_cli.main(argv) == 0
    assert (calls["model"], calls["host"], calls["port"]) == ("my-model", "0.0.0.0", 0)
    assert calls["allowed_hosts"] is None
    limits = calls["limits"]
    assert (limits.max_upload_bytes, limits.max_pixels) == (int(1.5 * 2**20), 2_000_000)
    assert (limits.max_vocabulary, limits.max_pending) == (7, 3)
    assert "anyone who can reach this machine" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--port", "70000"], "--port"),
        (["--max-upload-mb", "0"], "--max-upload-mb"),
        (["--max-megapixels", "-1"], "--max-megapixels"),
        (["--max-vocabulary", "0"], "--max-vocabulary"),
    ],
)
def test_bad_options_are_refused_before_loading(calls, argv, message):
    with pytest.raises(ValueError, match=message):
        serve_cli.main(argv)
    assert "model" not in calls


def test_a_port_in_use_fails_before_loading(monkeypatch):
    loaded = []
    monkeypatch.setattr(serve_cli, "load_predictor", lambda *a: loaded.append(a))
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve_cli.main(["--port", str(port)])
    assert not loaded
