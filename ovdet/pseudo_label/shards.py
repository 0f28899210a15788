"""Sharding: which shard a process labels, and the merge of the shards' journals."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError

from .layout import JOURNAL, SHARDS, read_run_manifest, setting_diffs, shard_folder
from .writer import LabelJournal, write_outputs


def distributed_shard() -> tuple[int, int] | None:
    """(rank, world size) when torch.distributed is initialised with more than one process."""
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return None
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


def resolve_shard(
    num_shards: Any, shard_index: Any, dist: tuple[int, int] | None
) -> tuple[int, int]:
    """(index, count) of this process's shard; (0, 1) for a single process.

    Raises:
        InputError: a count < 1, an index outside [0, count), one without the other, or
            options that contradict torch.distributed's rank / world size.
    """
    if dist is not None:
        rank, world = dist
        if (num_shards, shard_index) not in ((None, None), (world, rank)):
            raise InputError(
                f"--num-shards {num_shards} --shard-index {shard_index} contradict "
                f"torch.distributed (rank {rank} of world size {world}); under a launcher the "
                "shards are the ranks: leave both options out"
            )
        return rank, world
    if num_shards is None and shard_index is None:
        return 0, 1
    if num_shards is None or shard_index is None:
        raise InputError("--num-shards and --shard-index go together: give both, or neither")
    for value, option in ((num_shards, "--num-shards"), (shard_index, "--shard-index")):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{option} must be an integer, got {value!r}")
    if num_shards < 1:
        raise InputError(f"--num-shards must be >= 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise InputError(
            f"--shard-index must be in [0, {num_shards - 1}] for --num-shards {num_shards}, "
            f"got {shard_index}"
        )
    return shard_index, num_shards


def merge_shards(out: str | Path) -> dict[str, Any]:
    """Write ``out``'s final files from the journals of ``out/shards/<i>``: the same bytes
    as one process labelling every image.

    Returns:
        the content of ``summary.json``.

    Raises:
        InputError, FileNotFoundError: no shards, a missing shard, shards of different runs
            (what differs is named), or a shard that has not finished (named, with the
            number of images it still has to label).
    """
    out = Path(out).expanduser()
    root = out / SHARDS
    if not root.is_dir():
        raise FileNotFoundError(
            f"--merge-shards {out}: no {SHARDS}/ folder; run the shards first "
            "(--num-shards N --shard-index I --output the same folder)"
        )
    first = read_run_manifest(shard_folder(out, 0))
    if first is None:
        raise InputError(f"--merge-shards {out}: shard 0 is missing ({shard_folder(out, 0)})")
    count = first["shard"]["count"]
    images = first["images"]
    with ExitStack() as stack:
        readers = []
        for index in range(count):
            folder = shard_folder(out, index)
            manifest = read_run_manifest(folder)
            if manifest is None:
                raise InputError(
                    f"--merge-shards {out}: shard {index} of {count} is missing ({folder}); run "
                    f"it with --num-shards {count} --shard-index {index}"
                )
            diffs = setting_diffs(first, manifest, shard=False)
            if manifest["shard"]["count"] != count:
                diffs.append(f"shard count: {count} vs {manifest['shard']['count']}")
            if diffs:
                raise InputError(
                    f"--merge-shards {out}: shard {index} is another run than shard 0: "
                    f"{'; '.join(diffs)}; rerun that shard with the same settings "
                    "(--overwrite)"
                )
            mine = {img["id"]: img["file_name"] for img in images[index::count]}
            journal = LabelJournal(folder / JOURNAL, mine)
            missing = len(mine) - len(journal.offsets)
            if missing:
                raise InputError(
                    f"--merge-shards {out}: shard {index} has not finished ({missing} of "
                    f"{len(mine)} images to label); run it again to finish it, then merge"
                )
            readers.append(journal.reader(stack))
        shard_of = {img["id"]: k % count for k, img in enumerate(images)}
        settings = first["settings"]
        return write_outputs(
            out,
            [img["id"] for img in images],
            lambda image_id: readers[shard_of[image_id]](image_id),
            settings["vocabulary"]["names"],
            settings.get("novel"),
        )
