#!/usr/bin/env python3
"""Install detectron2 into the current Python environment.

detectron2 is not published on PyPI. This script tries, in order:

1. nothing, when ``import detectron2`` already works (idempotent re-runs are instant);
2. upstream from source (``git+https://github.com/facebookresearch/detectron2``), compiled
   ops included, when GitHub answers within a short timeout;
3. the PyPI sdist ``pb1-detectron2==0.6``, whose Python files are identical to upstream tag
   v0.6 but which lacks the C++/CUDA sources. Its ``setup.py`` is patched to build no
   extension and it is installed without its stale pins (``black==21.4b2``,
   ``iopath<0.1.10`` ...). The runtime dependencies are installed separately.
   ``ovdet.compat`` then provides a stand-in for the missing ``detectron2._C`` and the
   Pillow >= 10 aliases that v0.6 needs (see ENVIRONMENT notes in the README).

Usage::

    python tools/install_detectron2.py [--python PY] [--force-fallback] [--timeout 10]

The ``--python`` interpreter (default: the one running this script) receives the install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

UPSTREAM_GIT = "git+https://github.com/facebookresearch/detectron2.git"
SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

# Runtime dependencies of detectron2 0.6, without the pins that conflict with current
# packages (black, iopath, fvcore upper bounds) and without caffe2/docs-only extras.
RUNTIME_DEPS = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "fvcore>=0.1.5",
    "iopath>=0.1.7",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
    "setuptools",
]


def log(msg: str) -> None:
    print(f"[install_detectron2] {msg}", flush=True)


def run(cmd: list[str], timeout: float | None = None) -> int:
    log("$ " + " ".join(cmd))
    try:
        return subprocess.run(cmd, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        log(f"timed out after {timeout}s")
        return 124


def detectron2_status(python: str) -> str | None:
    """Return 'compiled', 'fallback' or None (not importable) for ``python``."""
    code = (
        "import importlib.util, detectron2;"
        "print('compiled' if importlib.util.find_spec('detectron2._C') else 'fallback')"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def host_reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pip(python: str, *args: str, timeout: float | None = None) -> int:
    return run([python, "-m", "pip", "install", "--disable-pip-version-check", *args], timeout)


def install_upstream(python: str, timeout: float) -> bool:
    if not host_reachable("github.com", timeout=timeout):
        log("github.com is not reachable; skipping the upstream source build")
        return False
    # Upstream compiles C++ (and CUDA when present) ops; that needs torch at build time.
    rc = pip(python, "--no-build-isolation", UPSTREAM_GIT, timeout=3600)
    return rc == 0


def _index_urls() -> list[str]:
    urls = []
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        urls.append(env.rstrip("/"))
    urls.append("https://pypi.org/simple")
    return urls


def download_sdist(dest: Path) -> Path:
    """Fetch the pb1-detectron2 sdist through the PyPI simple API and check its hash.

    ``pip download`` cannot be used: it generates the package metadata, which runs the
    broken ``setup.py`` (it needs the C++ sources that the sdist lacks).
    """
    fname = f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
    target = dest / fname
    errors = []
    for index in _index_urls():
        try:
            req = urllib.request.Request(f"{index}/{SDIST_NAME}/", headers={"Accept": "text/html"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                page = resp.read().decode("utf-8", "replace")
            links = re.findall(r'href="([^"]+)"', page)
            url = next(link for link in links if fname in link)
            url = urllib.request.urljoin(f"{index}/{SDIST_NAME}/", url.split("#")[0])
            with urllib.request.urlopen(url, timeout=120) as resp:
                data = resp.read()
        except Exception as exc:  # network errors of every kind: try the next index
            errors.append(f"{index}: {exc!r}")
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != SDIST_SHA256:
            raise RuntimeError(f"{fname} from {index} has sha256 {digest}, expected {SDIST_SHA256}")
        target.write_bytes(data)
        return target
    raise RuntimeError(f"could not download {fname}: " + "; ".join(errors))


def patch_setup(src: Path) -> None:
    """Make the sdist's setup.py build no extension and declare no dependencies."""
    setup_py = src / "setup.py"
    text = setup_py.read_text()
    text = text.replace("ext_modules=get_extensions(),", "ext_modules=[],")
    text = text.replace('cmdclass={"build_ext": torch.utils.cpp_extension.BuildExtension},', "")
    # Model-zoo configs are not in the sdist; don't try to symlink them.
    text = text.replace('package_data={"detectron2.model_zoo": get_model_zoo_configs()},', "")
    if "ext_modules=[]," not in text:
        raise RuntimeError("unexpected setup.py layout in the pb1-detectron2 sdist")
    setup_py.write_text(text)


def install_fallback(python: str) -> bool:
    if pip(python, *RUNTIME_DEPS) != 0:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        archive = download_sdist(tmpdir)
        with tarfile.open(archive) as tar:
            tar.extractall(tmpdir, filter="data")
        src = tmpdir / f"{SDIST_NAME}-{SDIST_VERSION}"
        patch_setup(src)
        shutil.rmtree(src / f"{SDIST_NAME.replace('-', '_')}.egg-info", ignore_errors=True)
        return pip(python, "--no-build-isolation", "--no-deps", str(src)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter to install into")
    parser.add_argument(
        "--force-fallback", action="store_true", help="skip the upstream source build"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for github.com")
    args = parser.parse_args(argv)

    status = detectron2_status(args.python)
    if status is not None:
        log(f"detectron2 already installed ({status}); nothing to do")
        return 0
    if not args.force_fallback and install_upstream(args.python, args.timeout):
        log(f"installed upstream detectron2 ({detectron2_status(args.python)})")
        return 0
    log(f"installing the {SDIST_NAME}=={SDIST_VERSION} Python files without compiled ops")
    if not install_fallback(args.python):
        log("detectron2 installation failed")
        return 1
    status = detectron2_status(args.python)
    log(f"detectron2 installed: {status}")
    print(json.dumps({"detectron2": status}))
    return 0 if status else 1


if __name__ == "__main__":
    sys.exit(main())
