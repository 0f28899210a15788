"""``ovdet extract-regions``: CLIP teacher embeddings of top-M proposals, to a region store.

For every image of a dataset, take the top-M class-agnostic proposals (from a file or from an
RPN trained on base boxes), embed each with the CLIP region teacher (crops at 1.0x and 1.5x;
:func:`~ovdet.teacher.factory.build_clip_region_teacher`) and append ``(proposals,
embeddings, scores)`` to a :class:`~ovdet.data.region_store.RegionEmbeddingStore`
(:func:`ovdet.teacher.extract.extract_regions`)::

    ovdet extract-regions --teacher ViT-B-32.pt --teacher-model ViT-B-32 \\
        --dataset ov_coco_train_base --proposals rpn_base_proposals.json --out regions/ \\
        --top-m 32 --num-gpus 8

The work is split over ranks (image ``i`` goes to rank ``i % world_size``) through detectron2's
``launch`` (``--num-gpus``, ``--num-machines``, ``--machine-rank``, ``--dist-url``; all ranks
must see the same ``--out`` directory), or over independent processes with ``--rank`` /
``--world-size`` (no torch.distributed, e.g. CPU array jobs). It is resumable: running the
same command again skips the images already in the store, whatever rank stored them. An image
that cannot be read (missing or corrupt file, size differing from the dataset's) or that has
no proposals is logged with its path, listed in ``OUT/errors-rank{R}.json`` and skipped; it is
retried by the next run. The command prints a JSON summary (images done / skipped / failed,
regions, seconds, images/s).

RKD's official proposal selection (top 5 after NMS at IoU 0.5 with the "+1" pixel
convention, one 1.0x crop per box) is ``--top-m 5 --nms 0.5 --nms-legacy-plus-one --scales
1.0``; the flag is recorded in the store's proposal-source string
(``|nms_legacy_plus_one=True``), so a store is only ever resumed with the same selection.

The store's teacher identity is ``open_clip:<architecture>:<weights>:<mode>`` (weights: the
sha256 of a checkpoint file, or the open_clip tag; mode: ``crop-pil``, ``crop-tensor`` or
``dense``), so a store is only ever resumed with the same teacher.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

import open_clip
import torch
from detectron2.engine import launch
from detectron2.utils import comm

from ovdet.data.region_store import RegionEmbeddingStore
from ovdet.teacher.extract import extract_regions
from ovdet.teacher.factory import CROP_BACKENDS, MODES, build_clip_region_teacher
from ovdet.teacher.proposals import ModelProposals, ProposalSource, load_proposals
from ovdet.utils.device import resolve_device
from ovdet.utils.io import file_sha256

__all__ = [
    "build_proposal_model",
    "build_teacher_model",
    "load_dataset_dicts",
    "main",
    "proposal_filters",
]


# ---------------------------------------------------------------------------- building blocks
def _register_model_config(spec: str) -> tuple[str, str]:
    """A model name or open_clip config json -> (registered name, identity of the architecture)."""
    path = Path(spec)
    if spec.endswith(".json"):
        if not path.is_file():
            raise FileNotFoundError(f"--teacher-model: open_clip config file not found: {path}")
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in cfg]
        if missing:
            raise ValueError(
                f"{path}: an open_clip model config needs fields embed_dim, vision_cfg, "
                f"text_cfg; missing {missing}"
            )
        open_clip.add_model_config(path)
        return path.stem, f"{path.stem}[config-sha256={file_sha256(path)[:16]}]"
    if spec not in open_clip.list_models():
        # ovdet's own small CLIP configs are registered on demand
        from ovdet.teacher.small_clip import register_clip_configs

        register_clip_configs()
    if spec not in open_clip.list_models():
        raise ValueError(
            f"--teacher-model {spec!r} is not an open_clip model name (see "
            "open_clip.list_models()) nor a path to a config .json"
        )
    return spec, spec


def build_teacher_model(
    model: str, pretrained: str, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, str]:
    """Create an open_clip model with ``open_clip.create_model(name, pretrained=CKPT)``.

    Args:
        model: an open_clip model name (``ViT-B-32``, ``ovdet-small-clip``) or the path of a
            custom open_clip config ``.json`` (registered under its file stem).
        pretrained: a local checkpoint path or an open_clip pretrained tag.
        device: where to put the model.

    Returns:
        (model in eval mode, teacher identity string: architecture and weights, with the
        sha256 of local files).
    """
    name, arch_identity = _register_model_config(model)
    if os.path.isfile(pretrained):
        weights = f"sha256={file_sha256(pretrained)[:16]}"
    else:
        weights = f"tag={pretrained}"
    clip = open_clip.create_model(name, pretrained=pretrained, device=device)
    return clip.eval(), f"open_clip:{arch_identity}:{weights}"


def load_dataset_dicts(
    dataset: Optional[str] = None,
    json_file: Optional[str] = None,
    image_root: Optional[str] = None,
) -> list[dict[str, Any]]:
    """Dataset dicts of a registered dataset name, or of a COCO-format json + image folder."""
    if dataset is not None:
        from detectron2.data import DatasetCatalog

        import ovdet.data  # noqa: F401  (registers the built-in dataset names)

        if dataset not in DatasetCatalog.list():
            raise KeyError(
                f"--dataset {dataset!r} is not registered; known: {sorted(DatasetCatalog.list())}"
            )
        return list(DatasetCatalog.get(dataset))
    if json_file is None or image_root is None:
        raise ValueError("give --dataset NAME, or both --json COCO.json and --image-root DIR")
    if not Path(json_file).is_file():
        raise FileNotFoundError(f"--json: file not found: {json_file}")
    from detectron2.data.datasets import load_coco_json

    return load_coco_json(json_file, image_root)


def build_proposal_model(
    config: str, weights: str, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, list]:
    """A detectron2 model (LazyConfig ``.py`` or yacs ``.yaml``) with its RPN weights.

    Returns:
        (model in eval mode, its test-time augmentations; see
        :func:`ovdet.engine.build.test_augmentations`).
    """
    from ovdet.engine.build import model_from_config, test_augmentations

    if not Path(weights).is_file():
        raise FileNotFoundError(f"--weights: file not found: {weights}")
    model, cfg = model_from_config(config, weights, device=device)
    return model, test_augmentations(cfg)


# ---------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ovdet extract-regions",
        description="CLIP teacher embeddings of top-M proposals per image, to a region store.",
    )
    p.add_argument("--teacher", required=True, help="open_clip checkpoint path or pretrained tag")
    p.add_argument(
        "--teacher-model",
        default="ViT-B-32",
        help="open_clip model name, or path of a custom open_clip config .json",
    )
    data = p.add_argument_group("data (one of)")
    data.add_argument("--dataset", help="registered dataset name (e.g. ov_coco_train_base)")
    data.add_argument("--json", dest="json_file", help="COCO-format json (with --image-root)")
    data.add_argument("--image-root", help="image folder of --json")
    props = p.add_argument_group("proposals (one of)")
    props.add_argument("--proposals", help="proposals file (COCO results json, d2 .pkl/.pt)")
    props.add_argument("--config", help="detectron2 config (.py LazyConfig or .yaml) of an RPN")
    props.add_argument("--weights", help="weights of --config")
    p.add_argument("--nms", type=float, default=None, help="extra NMS IoU threshold (default off)")
    p.add_argument(
        "--nms-legacy-plus-one",
        action="store_true",
        help="--nms measures boxes as inclusive pixel ranges (width x1 - x0 + 1), as RKD's "
        "official proposal selection (MAVL's NMS) does",
    )
    p.add_argument("--min-size", type=float, default=0.0, help="min proposal size in pixels")
    p.add_argument("--out", required=True, help="region store directory (created or resumed)")
    p.add_argument("--top-m", type=int, default=32, help="proposals per image")
    p.add_argument("--scales", default="1.0,1.5", help="crop scales, comma separated")
    p.add_argument("--mode", choices=MODES, default="crop", help="teacher mode")
    p.add_argument(
        "--crop-backend", choices=CROP_BACKENDS, default="pil", help="crop preprocessing"
    )
    p.add_argument("--batch-size", type=int, default=64, help="crops per CLIP forward pass")
    p.add_argument("--shard-size", type=int, default=256, help="images per store shard")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16")
    p.add_argument("--num-gpus", type=int, default=1, help="processes per machine (one per GPU)")
    p.add_argument("--num-machines", type=int, default=1)
    p.add_argument("--machine-rank", type=int, default=0)
    p.add_argument("--dist-url", default="auto", help="e.g. tcp://host:port for several machines")
    p.add_argument(
        "--rank", type=int, default=None, help="manual sharding without torch.distributed"
    )
    p.add_argument("--world-size", type=int, default=None, help="with --rank")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _parse(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.dataset is None) == (args.json_file is None):
        parser.error("give exactly one of --dataset or --json (with --image-root)")
    if args.json_file is not None and args.image_root is None:
        parser.error("--json needs --image-root")
    if (args.proposals is None) == (args.config is None):
        parser.error("give exactly one of --proposals FILE or --config CFG --weights RPN.pth")
    if args.config is not None and args.weights is None:
        parser.error("--config needs --weights")
    if (args.rank is None) != (args.world_size is None):
        parser.error("--rank and --world-size go together")
    if args.rank is not None:
        if not 0 <= args.rank < args.world_size:
            parser.error(f"need 0 <= --rank < --world-size, got {args.rank}, {args.world_size}")
        if args.num_gpus * args.num_machines > 1:
            parser.error("--rank/--world-size replace --num-gpus/--num-machines; use one or other")
    try:
        args.scales = [float(s) for s in args.scales.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--scales must be comma-separated numbers, got {args.scales!r}")
    if args.top_m < 1:
        parser.error(f"--top-m must be >= 1, got {args.top_m}")
    if args.nms_legacy_plus_one and args.nms is None:
        parser.error("--nms-legacy-plus-one changes the IoU of --nms; give --nms too (RKD: 0.5)")
    return args


def proposal_filters(args: argparse.Namespace) -> str:
    """The proposal filters of ``args`` as recorded in the store's proposal-source string.

    ``|nms=...|min_size=...``, plus ``|nms_legacy_plus_one=True`` when the "+1" IoU is used
    (absent otherwise, so stores written before the flag existed keep their source string and
    resume).
    """
    filters = f"|nms={args.nms}|min_size={args.min_size}"
    if args.nms_legacy_plus_one:
        filters += "|nms_legacy_plus_one=True"
    return filters


def _device(spec: Optional[str]) -> str:
    spec = resolve_device(spec)
    if spec == "cuda" and comm.get_world_size() > 1:
        return f"cuda:{comm.get_local_rank()}"
    return spec


def _aggregate(summaries: list[dict[str, Any]], out: str) -> dict[str, Any]:
    total = {k: sum(s[k] for s in summaries) for k in ("images", "done", "skipped", "failed")}
    total["regions"] = sum(s["regions"] for s in summaries)
    seconds = max(s["seconds"] for s in summaries)
    total["seconds"] = seconds
    total["images_per_s"] = round(total["done"] / seconds, 3) if seconds > 0 else 0.0
    total["ranks"] = len(summaries)
    total["store"] = str(out)
    if total["failed"]:
        total["errors_files"] = [s["errors_file"] for s in summaries if s["failed"]]
    return total


def _worker(args: argparse.Namespace) -> None:
    if args.rank is not None:
        rank, world_size = args.rank, args.world_size
    else:
        rank, world_size = comm.get_rank(), comm.get_world_size()
    device = _device(args.device)
    dataset_dicts = load_dataset_dicts(args.dataset, args.json_file, args.image_root)
    model, model_identity = build_teacher_model(args.teacher_model, args.teacher, device)
    teacher = build_clip_region_teacher(
        model,
        mode=args.mode,
        crop_backend=args.crop_backend,
        scales=args.scales,
        batch_size=args.batch_size,
        device=device,
        model_identity=model_identity,
    )
    filters = proposal_filters(args)
    if args.proposals is not None:
        proposals: ProposalSource = load_proposals(
            args.proposals,
            top_m=args.top_m,
            nms_thresh=args.nms,
            min_size=args.min_size,
            nms_legacy_plus_one=args.nms_legacy_plus_one,
        )
        source = f"file:{Path(args.proposals).resolve()}{filters}"
    else:
        rpn, augmentations = build_proposal_model(args.config, args.weights, device)
        proposals = ModelProposals(
            rpn,
            augmentations=augmentations,
            top_m=args.top_m,
            nms_thresh=args.nms,
            min_size=args.min_size,
            nms_legacy_plus_one=args.nms_legacy_plus_one,
        )
        weights_hash = file_sha256(args.weights)[:16]
        source = f"rpn:{Path(args.config).resolve()}:weights-sha256={weights_hash}{filters}"
    store = RegionEmbeddingStore(
        args.out,
        teacher=teacher.identity,
        dim=teacher.dim,
        dtype=args.dtype,
        scales=args.scales,
        top_m=args.top_m,
        proposals=source,
        extra={"teacher_model": args.teacher_model, "teacher_weights": args.teacher},
    )
    summary = extract_regions(
        dataset_dicts,
        teacher,
        proposals,
        store,
        args.top_m,
        rank=rank,
        world_size=world_size,
        progress=not args.no_progress,
        nms_thresh=args.nms,
        min_size=args.min_size,
        shard_size=args.shard_size,
        nms_legacy_plus_one=args.nms_legacy_plus_one,
    )
    if args.rank is None and world_size > 1:
        summaries = comm.all_gather(summary)
    else:
        summaries = [summary]
    if args.rank is not None or comm.is_main_process():
        print(json.dumps(_aggregate(summaries, args.out)), flush=True)


def main(argv: Optional[list[str]] = None) -> int:
    """``ovdet extract-regions``: see the module docstring.

    Returns:
        0 (failed images are reported in the summary and the errors files, not by the exit
        code).
    """
    args = _parse(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    num_gpus = args.num_gpus if torch.cuda.is_available() else 1
    if args.rank is not None:
        _worker(args)
        return 0
    launch(
        _worker,
        num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
    return 0
