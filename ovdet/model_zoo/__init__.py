"""Named models: the bundles ovdet ships (``ovdet/assets/models``) and the user's own
checkpoints registered by model cards, with their metrics; loading, checking and exporting.

    from ovdet.model_zoo import DEFAULT_MODEL, get_model, list_models
    for spec in list_models():
        print(spec.name, spec.kind, spec.metrics.get("AP50_novel"))
    loaded = get_model().load(device="cpu")      # the best shipped model

- :mod:`~ovdet.model_zoo.registry`: :class:`ModelSpec`, :class:`LoadedModel`,
  :func:`list_models`, :func:`get_model`, :data:`DEFAULT_MODEL`, ``$OVDET_MODELS``;
- :mod:`~ovdet.model_zoo.bundle`: the shipped format (checksummed files) and its loader;
- :mod:`~ovdet.model_zoo.cards`: model cards (JSON files naming a config, weights, a text
  encoder or embeddings, a vocabulary, metrics);
- :mod:`~ovdet.model_zoo.export`: writing a bundle from a trained OV-Shapes run
  (``ovdet bench ov-shapes --export-demo DIR --export-method METHOD``).

The command line is ``ovdet models`` (:mod:`ovdet.cli.models`); ``ovdet detect --model``,
``ovdet demo --model`` and :meth:`ovdet.predictor.OVPredictor.from_pretrained` take names.
"""

from ovdet.model_zoo.bundle import (
    BUNDLE_FILES,
    Bundle,
    load_bundle,
    read_manifest,
    shipped_models_dir,
    verify_bundle,
)
from ovdet.model_zoo.cards import ModelCard, read_card
from ovdet.model_zoo.export import export_bundle, export_run_bundle
from ovdet.model_zoo.registry import (
    DEFAULT_MODEL,
    MODELS_ENV,
    LoadedModel,
    ModelSpec,
    UnknownModelError,
    get_model,
    list_models,
)

__all__ = [
    "BUNDLE_FILES",
    "DEFAULT_MODEL",
    "MODELS_ENV",
    "Bundle",
    "LoadedModel",
    "ModelCard",
    "ModelSpec",
    "UnknownModelError",
    "export_bundle",
    "export_run_bundle",
    "get_model",
    "list_models",
    "load_bundle",
    "read_card",
    "read_manifest",
    "shipped_models_dir",
    "verify_bundle",
]
