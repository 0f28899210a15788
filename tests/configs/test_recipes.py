"""docs/recipes.md and the configs never drift: every recipe table's ``ovdet`` column is the
config's value at the table's ``config key``, and every OV-COCO / OV-LVIS config has a table.

Table layout (docs/recipes.md, "How to read the tables"): a section ``### `configs/<file>.py` ``
followed by a table whose header is ``| setting | config key | ovdet | official | source |``.
``config key`` is a dotted path into the loaded config (list items by index), a derived key
``@name`` (:data:`DERIVED`), or ``—`` (not a config value: nothing to check). ``ovdet`` is a
Python literal in backticks, compared with the config value (classes by name, numbers to 1e-6).
"""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest
from detectron2.config import LazyConfig
from omegaconf import DictConfig, ListConfig

from ovdet.text import get_templates
from ovdet.text.templates import TEMPLATE_SET_NAMES

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
RECIPES = ROOT / "docs" / "recipes.md"
HEADER = ["setting", "config key", "ovdet", "official", "source"]
NO_KEY = "—"


# ------------------------------------------------------------------ reading configs
def plain(value):
    """A config value as plain Python: classes and functions by name, lists as lists."""
    if isinstance(value, DictConfig):
        if "_target_" in value:
            return plain(value._target_)
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (ListConfig, list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, type) or callable(value):
        return getattr(value, "__name__", repr(value))
    return value


def select(cfg, key: str):
    """The value at a dotted ``key`` (integers index lists); KeyError names the missing part."""
    node = cfg
    for part in key.split("."):
        if isinstance(node, (ListConfig, list, tuple)) and part.isdigit():
            node = node[int(part)]
        elif isinstance(node, (DictConfig, dict)) and part in node:
            node = node[part]
        else:
            raise KeyError(f"{key}: no {part!r}")
    return node


def _get(cfg, key: str, default):
    try:
        return select(cfg, key)
    except KeyError:
        return default


def _box_heads(cfg):
    head = cfg.model.roi_heads.box_head
    return head.text_head if "text_head" in head else head


def _store_spec(cfg):
    stores = LazyConfig.load(str(CONFIGS / "common" / "distill_paths.py")).REGION_STORES
    return stores[Path(cfg.dataloader.train.mapper.store).name]


def _templates(cfg) -> str:
    found = [n for n in TEMPLATE_SET_NAMES if get_templates(n) == list(cfg.model.templates)]
    return found[0] if found else f"custom ({len(cfg.model.templates)} templates)"


def _init(cfg) -> str:
    path = str(cfg.train.init_checkpoint)
    if not path or path.endswith(".pkl"):
        return Path(path).name
    return "/".join(Path(path).parts[-2:])


def _rpn_convs(cfg) -> int:
    dims = list(_get(cfg, "model.proposal_generator.head.conv_dims", [-1]))
    return len(dims)


def _regions_per_image(cfg):
    distiller = cfg.model.distillers[0]
    if "iou_threshold" in distiller:  # HierKD's instance level: proposals matching a box
        return distiller.max_per_image
    top_m = _store_spec(cfg).top_m
    limit = distiller.get("max_regions")
    return top_m if limit is None else min(top_m, limit)


def _cls_bias(cfg) -> str:
    loss = cfg.model.roi_heads.box_predictor.cls_loss
    name = plain(loss)
    if "Sigmoid" not in name and "Federated" not in name:
        return "none (softmax)"
    if not loss.get("use_bias", True):
        return "none"
    prior = loss.get("prior_prob", 0.01)
    return f"learned, init -log((1-p)/p) = {-math.log((1 - prior) / prior):.3f}"


def _rare_classes(cfg) -> str:
    loss = cfg.model.roi_heads.box_predictor.cls_loss
    name = plain(loss)
    if name == "MaskedSoftmaxClassification":
        masked = sum(1 for keep in loss.class_mask if not keep)
        how = "x 0" if loss.fill == "zero" else "removed"
        return f"masked: {masked} logits {how}"
    if name == "FederatedClassification":
        counts = loss.class_weights.counts
        if plain(counts) == "lvis_train_image_counts" and counts.exclude_rare:
            return "never sampled (federated weight 0)"
    return (
        "not in the training vocabulary"
        if "select" in _classifier(cfg).train_embeddings
        else "trained"
    )


def _resize(augmentations) -> str:
    """The resize (and crop) of an augmentation list, in words."""
    parts = []
    for aug in augmentations:
        name = plain(aug)
        if name == "ResizeScale":
            parts.append(
                f"scale {aug.min_scale}..{aug.max_scale} of {aug.target_height}x{aug.target_width}"
            )
        elif name in ("FixedSizeCrop", "PolygonFixedSizeCrop"):
            parts.append("random crop {}x{}".format(*aug.crop_size))
        elif name == "ResizeShortestEdge":
            edges = aug.short_edge_length
            edges = list(edges) if isinstance(edges, (ListConfig, list, tuple)) else [edges]
            parts.append(f"shortest edge {edges}, longest <= {aug.max_size}")
    return ", ".join(parts)


def _classifier(cfg):
    return cfg.model.roi_heads.box_predictor.classifier


DERIVED = {
    "@rare_classes": _rare_classes,
    "@templates": _templates,
    "@train_embeddings": lambda c: (
        Path(c.model.roi_heads.box_predictor.classifier.train_embeddings.path).name
    ),
    "@init": _init,
    "@warmup_iters": lambda c: round(c.lr_multiplier.warmup_length * c.train.max_iter),
    "@lr_steps": lambda c: list(c.lr_multiplier.scheduler.milestones)[:-1],
    "@augmentations": lambda c: [plain(a) for a in c.dataloader.train.mapper.augmentations],
    "@train_resize": lambda c: _resize(c.dataloader.train.mapper.augmentations),
    "@test_resize": lambda c: _resize(c.dataloader.test.mapper.augmentations),
    "@test_augmentations": lambda c: [plain(a) for a in c.dataloader.test.mapper.augmentations],
    "@sampler": lambda c: plain(_get(c, "dataloader.train.sampler", "TrainingSampler")),
    "@fpn_norm": lambda c: _get(c, "model.backbone.norm", ""),
    "@rpn_convs": _rpn_convs,
    "@box_head": lambda c: f"{len(_box_heads(c).conv_dims)}conv+{len(_box_heads(c).fc_dims)}fc",
    "@box_head_norm": lambda c: _get(_box_heads(c), "conv_norm", ""),
    "@mask_head_norm": lambda c: _get(c, "model.roi_heads.mask_head.conv_norm", ""),
    "@weight_decay_norm": lambda c: _get(c, "optimizer.params.weight_decay_norm", None),
    "@weight_decay_bias": lambda c: _get(
        c, "optimizer.params.weight_decay_bias", c.optimizer.weight_decay
    ),
    "@grad_clip": lambda c: c.train.get("grad_clip", 0.0) or 0.0,
    "@amp": lambda c: bool(c.train.amp.enabled),
    "@rpn_smooth_l1_beta": lambda c: _get(c, "model.proposal_generator.smooth_l1_beta", 0.0),
    "@box_smooth_l1_beta": lambda c: _get(c, "model.roi_heads.box_predictor.smooth_l1_beta", 0.0),
    "@cls_bias": _cls_bias,
    "@store": lambda c: Path(c.dataloader.train.mapper.store).name,
    "@store.top_m": lambda c: _store_spec(c).top_m,
    "@store.scales": lambda c: list(_store_spec(c).scales),
    "@store.nms": lambda c: _store_spec(c).nms,
    "@store.nms_legacy_plus_one": lambda c: _store_spec(c).nms_legacy_plus_one,
    "@regions_per_image": _regions_per_image,
    "@distillers": lambda c: [plain(d.objective) for d in c.model.get("distillers", [])],
}


def config_value(cfg, key: str):
    if key.startswith("@"):
        if key not in DERIVED:
            raise KeyError(f"unknown derived key {key}; known: {sorted(DERIVED)}")
        return plain(DERIVED[key](cfg))
    return plain(select(cfg, key))


def same(expected, actual) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or expected == actual and type(expected) is type(actual)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(map(same, expected, actual))
    return expected == actual


# ------------------------------------------------------------------ reading docs/recipes.md
def _cells(line: str) -> list[str]:
    """The cells of a table row; ``\\|`` is a literal bar inside a cell (GitHub markdown)."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", inner)]


def recipe_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """config file (relative to configs/) -> rows of its recipe table."""
    tables: dict[str, list[dict[str, str]]] = {}
    current = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        heading = re.match(r"^### `configs/(\S+\.py)`\s*$", lines[i])
        if heading:
            current = heading.group(1)
            if current in tables:
                raise AssertionError(f"docs/recipes.md: two tables for {current}")
        elif current and lines[i].startswith("|") and _cells(lines[i]) == HEADER:
            rows = []
            i += 2  # header and separator
            while i < len(lines) and lines[i].startswith("|"):
                cells = _cells(lines[i])
                assert len(cells) == len(HEADER), f"docs/recipes.md line {i + 1}: {lines[i]}"
                rows.append({**dict(zip(HEADER, cells)), "line": str(i + 1)})
                i += 1
            tables[current] = rows
            current = None
            continue
        i += 1
    return tables


def _literal(cell: str, where: str):
    found = re.fullmatch(r"`(.*)`", cell)
    assert found, f"{where}: the ovdet cell must be one literal in backticks, got {cell!r}"
    try:
        return ast.literal_eval(found.group(1))
    except (ValueError, SyntaxError) as e:
        raise AssertionError(f"{where}: ovdet cell {cell!r} is not a Python literal ({e})") from e


def _key(cell: str, where: str) -> str | None:
    if cell == NO_KEY:
        return None
    found = re.fullmatch(r"`([@\w.]+)`", cell)
    assert found, f"{where}: the config key cell must be `dotted.path`, `@derived` or —"
    return found.group(1)


TABLES = recipe_tables(RECIPES.read_text(encoding="utf-8"))
EXPERIMENTS = sorted(
    str(p.relative_to(CONFIGS)) for d in ("ov_coco", "ov_lvis") for p in (CONFIGS / d).glob("*.py")
)


def test_every_coco_and_lvis_config_has_a_recipe_table():
    assert sorted(TABLES) == EXPERIMENTS, {
        "without a table": sorted(set(EXPERIMENTS) - set(TABLES)),
        "table of no config": sorted(set(TABLES) - set(EXPERIMENTS)),
    }


@pytest.mark.parametrize("config", sorted(TABLES))
def test_recipe_table_matches_the_config(config, monkeypatch, tmp_path):
    monkeypatch.setenv("OVDET_DATASETS", str(tmp_path))
    cfg = LazyConfig.load(str(CONFIGS / config))
    rows = TABLES[config]
    assert len(rows) >= 15, f"{config}: the table lists too few settings"
    checked = 0
    mismatches = []
    for row in rows:
        where = f"docs/recipes.md line {row['line']} ({config}, {row['setting']})"
        key = _key(row["config key"], where)
        if key is None:
            continue
        expected = _literal(row["ovdet"], where)
        actual = config_value(cfg, key)
        if not same(expected, actual):
            mismatches.append(f"{where}: docs say {expected!r}, config has {actual!r}")
        checked += 1
    assert not mismatches, "\n".join(mismatches)
    assert checked >= 12


def test_table_reader_refuses_malformed_rows():
    text = "### `configs/x.py`\n\n| " + " | ".join(HEADER) + " |\n|---|---|---|---|---|\n"
    text += "| lr | `optimizer.lr` | 0.02 | 0.02 | d2 |\n"
    (row,) = recipe_tables(text)["x.py"]
    with pytest.raises(AssertionError, match="one literal in backticks"):
        _literal(row["ovdet"], "here")
    with pytest.raises(AssertionError, match="config key cell"):
        _key("optimizer lr", "here")
    with pytest.raises(KeyError, match="no 'lr'"):
        select(DictConfig({"optimizer": {}}), "optimizer.lr")
    assert same([1, 0.1], [1, 0.1 + 1e-12]) and not same(True, 1) and not same(1, [1])
