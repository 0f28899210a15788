"""ovdet's methods, one package each: its modules, config helpers and registration.

=================  ==========================================================
``vild_text``      ViLD-text: the core classifier (``ovdet.modeling``)
``vild``           ViLD-image distillation objective + config helper
``vild_ensemble``  text and image heads, ROI heads, predictor, temperature rule
``rkd``            RKD objective (L1 + IRM) + config helper
``rkd_ensemble``   ViLD-ensemble heads trained with RKD (a combination)
``hierkd``         HierKD global objective + config helper (and RKD + HierKD)
``grounding``      Grounding R-CNN: GLIP-style fusion, region-word head, chunked vocabularies
=================  ==========================================================

Each registers a :class:`~ovdet.methods.registry.Method` in :data:`METHODS` (name, configs
per benchmark, the loss terms it adds, what it needs). Adding a distillation objective:
a package here with its module, config helper and ``register_method(...)``, one import
line below, and its config files.
"""

from ovdet.methods.registry import METHODS, NEEDS, Method, configs_dir, get_method, register_method

# isort: split
# registration order is the order tools list the methods in
from ovdet.methods import vild_text  # noqa: F401

# isort: split
from ovdet.methods import vild  # noqa: F401

# isort: split
from ovdet.methods import vild_ensemble  # noqa: F401

# isort: split
from ovdet.methods import rkd  # noqa: F401

# isort: split
from ovdet.methods import rkd_ensemble  # noqa: F401

# isort: split
from ovdet.methods import hierkd  # noqa: F401

# isort: split
from ovdet.methods import grounding  # noqa: F401

__all__ = ["METHODS", "NEEDS", "Method", "configs_dir", "get_method", "register_method"]
