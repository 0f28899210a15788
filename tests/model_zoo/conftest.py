"""Model-zoo tests see the shipped models only: model cards listed by the user's
``$OVDET_MODELS`` are hidden (a test that needs cards sets the variable itself)."""

import pytest


@pytest.fixture(autouse=True)
def _no_user_models(monkeypatch):
    monkeypatch.delenv("OVDET_MODELS", raising=False)
