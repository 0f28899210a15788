"""On-disk store of per-image teacher targets (ViLD-image): proposals + embeddings.

Layout of a store directory ``root``::

    root/store.json                  metadata: teacher identity, D, dtype, scales, top_m,
                                     proposal source (written once, atomically)
    root/index-rank{R}.jsonl         one JSON line per finished shard of writer rank R
    root/shards/r{R}-{S:06d}.safetensors
                                     shard S of rank R (safetensors, read lazily)
    root/errors-rank{R}.json         images that rank R could not process (written by
                                     :mod:`ovdet.teacher.extract`)

A shard holds the images it covers back to back:

- ``boxes`` (N, 4) float32, XYXY in ORIGINAL image pixels (as the images are read from disk,
  EXIF orientation applied, before any augmentation);
- ``embeddings`` (N, D) float16 or float32, row i is the L2-normalised teacher embedding of
  box i (stored rounded to the store's dtype);
- ``scores`` (N,) float32 proposal scores (NaN for images added without scores);
- ``offsets`` (n + 1,) int64: image k owns rows ``offsets[k]:offsets[k + 1]``;

and its safetensors header metadata names the images (``ids``: JSON list, int ids stay ints,
str ids stay strings).

Crash safety: a shard is written to a hidden temporary file in ``shards/``, flushed and fsynced,
then ``os.replace``d to its final name; only THEN is its index line (``{"shard", "ids",
"counts", "scored"}``) appended to ``index-rank{R}.jsonl`` and fsynced. Readers only open
shards named in an index, so a half-written shard (temporary file, or a shard whose index line
was never written) is never read; a shard whose index line is complete is never redone
(:meth:`RegionEmbeddingStore.done_ids`). A writer that opens a rank repairs a torn last index
line and deletes that rank's stray temporary files.

Several writers (one per rank, e.g. one per GPU or machine on a shared file system) can fill a
store at once; each appends only to its own index and shards, and readers take the union.
"""

from ovdet.data.region_store.layout import ImageId, normalize_image_id
from ovdet.data.region_store.store import RegionEmbeddingStore
from ovdet.data.region_store.writer import RegionStoreWriter

__all__ = ["ImageId", "RegionEmbeddingStore", "RegionStoreWriter", "normalize_image_id"]
