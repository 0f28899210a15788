"""ovdet.utils.memory: glibc's mmap threshold fixed once, the user's environment respected."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str, env_extra: dict) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_fixed_once_and_environment_wins():
    code = (
        "from ovdet.utils.memory import fix_malloc_mmap_threshold as f;import sys; print(f(), f())"
    )
    first, second = _run(code, {}).split()
    if sys.platform.startswith("linux"):
        assert first == "True" and second == "False"  # glibc: done, then a no-op
    else:
        assert first == second == "False"
    assert _run(code, {"MALLOC_MMAP_THRESHOLD_": "65536"}) == "False False"
