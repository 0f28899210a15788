"""OV-Shapes: a synthetic open-vocabulary detection world, small enough for a CPU.

Categories are compositions of attributes (colour x shape, optionally x texture): "red
circle", "striped blue star". A fixed, balanced subset of combinations is *novel*: never
box-annotated in ``train_base.json`` although such objects appear in its images and are
named in its captions, as in OV-COCO. Every colour and shape value has base categories, so a
detector that aligns regions with text embeddings can compose novel classes it never saw
boxes for.

Other worlds (:mod:`~ovdet.data.synthetic.worlds`): classes texture x shape with objects of
random colours (``colour_mode="random"``), other colours / shapes / textures / novel splits,
crops of real photographs as backgrounds (``background="photo"``), object counts and sizes.

Public API::

    OVShapesConfig(image_size=256, textures=False, ...)     generator parameters
    WORLDS["textures"].config(image_size=160)              a named world's parameters
    OVShapesGenerator(config).scene(seed, split, index)     one in-memory Scene
    generate_ov_shapes(out, num_train=..., num_val=..., seed=...)   files on disk
    register_ov_shapes(root, prefix="ov_shapes")            detectron2 registration
    ov_shapes_dataset(root, "val") / ov_shapes_class_names(root, "novel")   config helpers
    load_split(root)                                        split.json as a dict

CLI: ``ovdet data ov-shapes --out DIR --num-train N --num-val M --seed S [--world W]``.
"""

from ovdet.data.synthetic.attributes import (
    COLOURS,
    SHAPES,
    TEXTURES,
    ShapeCategory,
    build_categories,
    choose_novel,
)
from ovdet.data.synthetic.catalog import (
    default_ov_shapes_root,
    ov_shapes_class_names,
    ov_shapes_dataset,
    prepare_external_dataset,
    register_ov_shapes,
    split_files,
)
from ovdet.data.synthetic.config import OVShapesConfig
from ovdet.data.synthetic.dataset import FILES, encode_mask, generate_ov_shapes, load_split
from ovdet.data.synthetic.scene import OVShapesGenerator, Scene, SceneObject, scene_rng
from ovdet.data.synthetic.worlds import WORLDS, World, resolve_worlds

__all__ = [
    "COLOURS",
    "FILES",
    "SHAPES",
    "TEXTURES",
    "WORLDS",
    "OVShapesConfig",
    "OVShapesGenerator",
    "Scene",
    "SceneObject",
    "ShapeCategory",
    "World",
    "build_categories",
    "choose_novel",
    "default_ov_shapes_root",
    "encode_mask",
    "generate_ov_shapes",
    "load_split",
    "ov_shapes_class_names",
    "ov_shapes_dataset",
    "prepare_external_dataset",
    "register_ov_shapes",
    "resolve_worlds",
    "scene_rng",
    "split_files",
]
