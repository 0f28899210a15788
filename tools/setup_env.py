#!/usr/bin/env python3
"""Set up a development environment for ovdet: ``make setup`` runs this.

Steps (each skipped when already done, so a re-run takes seconds):

1. create the virtual environment (default ``.venv``);
2. install PyTorch (``torch==2.14.1 torchvision==0.29.1`` unless ``OVDET_TORCH_SPEC`` says
   otherwise, e.g. ``OVDET_TORCH_SPEC="torch torchvision"``);
3. install detectron2 (``tools/install_detectron2.py``: upstream source, or the v0.6
   Python-only fallback);
4. install ovdet itself, editable, with its test extras.

A stamp file inside the venv records the inputs (this script, pyproject.toml, the installer,
the torch spec); when they are unchanged and the imports work, nothing is reinstalled.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TORCH_SPEC = "torch==2.14.1 torchvision==0.29.1"
STAMP = ".ovdet-setup-stamp"


def log(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def run(cmd: list[str]) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def fingerprint(torch_spec: str, extras: str) -> str:
    h = hashlib.sha256()
    for rel in ("pyproject.toml", "tools/setup_env.py", "tools/install_detectron2.py"):
        h.update((ROOT / rel).read_bytes())
    h.update(torch_spec.encode())
    h.update(extras.encode())
    return h.hexdigest()


def imports_ok(python: str) -> bool:
    code = "import torch, torchvision, detectron2, ovdet, open_clip, pytest"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up the ovdet development environment.")
    parser.add_argument("--venv", default=str(ROOT / ".venv"), help="virtual environment path")
    parser.add_argument("--extras", default="test", help="ovdet extras to install")
    args = parser.parse_args(argv)

    torch_spec = os.environ.get("OVDET_TORCH_SPEC", DEFAULT_TORCH_SPEC)
    env_dir = Path(args.venv)
    python = str(env_dir / "bin" / "python")
    stamp = env_dir / STAMP
    want = fingerprint(torch_spec, args.extras)
    if stamp.exists() and stamp.read_text().strip() == want and imports_ok(python):
        log(f"environment {env_dir} is up to date")
        return 0

    if not Path(python).exists():
        log(f"creating virtual environment {env_dir}")
        venv.EnvBuilder(with_pip=True).create(env_dir)
        run([python, "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"])

    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    run(pip + torch_spec.split())
    run([python, str(ROOT / "tools" / "install_detectron2.py"), "--python", python])
    run(pip + ["--no-build-isolation", "-e", f"{ROOT}[{args.extras}]"])
    if not imports_ok(python):
        log("imports still fail after installation:")
        subprocess.run([python, "-c", "import torch, detectron2, ovdet, open_clip"])
        return 1
    stamp.write_text(want + "\n")
    log(f"environment {env_dir} is ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
