"""Models that ship with ovdet (``ovdet/assets``): loading, checking and exporting them.

The shipped OV-Shapes demo bundle (a small CLIP teacher's text tower and a detector) is
read by :func:`load_demo_assets`; :func:`export_demo_assets` writes one from a trained
benchmark run, with checksums in its manifest.
"""

from ovdet.model_zoo.assets import (
    DEMO_FILES,
    DemoBundle,
    default_assets_dir,
    export_demo_assets,
    load_demo_assets,
    verify_assets,
)

__all__ = [
    "DEMO_FILES",
    "DemoBundle",
    "default_assets_dir",
    "export_demo_assets",
    "load_demo_assets",
    "verify_assets",
]
