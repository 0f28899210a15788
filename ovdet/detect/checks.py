"""What ``ovdet detect`` checks before the first image: output folder, vocabulary, settings."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ovdet.utils.errors import InputError
from ovdet.utils.io import file_sha256

from .layout import (
    VIS_DIR,
)


# ---------------------------------------------------------------------- checks before the run
def check_output_folder(path: str | os.PathLike, *, vis: bool = True) -> Path:
    """Create the output folder (and ``vis/``) and prove it writable with a probe file.

    Raises:
        InputError: the path is a file, or the folder cannot be created or written; the
            message names it.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out} is a file, not a folder; choose a folder")
    folders = [out, out / VIS_DIR] if vis else [out]
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError as exc:
            raise InputError(f"cannot create output folder {folder}: a file is in the way") from exc
        except OSError as exc:
            raise InputError(
                f"cannot create output folder {folder} ({exc.strerror or exc}); choose another "
                "--output"
            ) from exc
        probe = folder / f".ovdet-write-probe-{os.getpid()}"
        try:
            with open(probe, "wb") as f:
                f.write(b"probe")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise InputError(
                f"output folder {folder} is not writable ({exc.strerror or exc}); choose "
                "another --output or fix its permissions"
            ) from exc
        finally:
            try:
                probe.unlink()
            except OSError:
                pass
    return out


def resolve_detect_vocabulary(
    *,
    vocab: str | None = None,
    vocab_file: str | None = None,
    embeddings: str | None = None,
    names_file: str | None = None,
) -> tuple[list[str], Any, dict[str, Any]]:
    """The vocabulary of a detect run from exactly one of ``--vocab``, ``--vocab-file`` or
    ``--embeddings`` (+ ``--names-file``).

    Returns:
        (names, embeddings tensor or None, its identity for ``run.json``).

    Raises:
        InputError, FileNotFoundError, ValueError: no or several sources, a missing or bad
            file, an empty or duplicated name, names that do not match the embedding rows.
    """
    from ovdet.text import load_class_embeddings, names_path, resolve_vocabulary

    given = [f for f, v in (("--vocab", vocab), ("--vocab-file", vocab_file),
                            ("--embeddings", embeddings)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise InputError(
            "give exactly one vocabulary: --vocab NAMES, --vocab-file FILE or --embeddings FILE "
            f"--names-file FILE (got {', '.join(given) or 'none'})"
        )
    if names_file is not None and embeddings is None:
        raise InputError(
            "--names-file names the rows of --embeddings; without --embeddings pass the names "
            "with --vocab-file"
        )
    if embeddings is None:
        if vocab is not None:
            names = resolve_vocabulary(vocab, kind="names", option="--vocab")
        else:
            names = resolve_vocabulary(vocab_file, kind="file", option="--vocab-file")
        return names, None, {"names": names, "embeddings": None}
    emb_path = Path(embeddings).expanduser()
    if not emb_path.is_file():
        what = "is a folder" if emb_path.is_dir() else "not found"
        raise FileNotFoundError(
            f"--embeddings {emb_path} {what}; make one with `ovdet embed-text ... --out FILE`"
        )
    if names_file is None:
        sidecar = names_path(emb_path)
        if not sidecar.is_file():
            raise InputError(
                f"--embeddings {emb_path} needs --names-file (the class names of its rows, one "
                f"per line; `ovdet embed-text` writes {sidecar.name} beside it)"
            )
        names_file = str(sidecar)
    names = resolve_vocabulary(names_file, kind="file", option="--names-file")
    try:
        emb = load_class_embeddings(emb_path, vocabulary=names)
    except ValueError as exc:
        raise InputError(f"{exc} (--names-file {names_file})") from exc
    identity = {"file": str(emb_path), "sha256": file_sha256(emb_path)}
    return names, emb, {"names": names, "embeddings": identity}


def compare_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two runs' ``run.json`` (settings and images); [] when the same."""
    diffs: list[str] = []
    o, n = old.get("settings", {}), new["settings"]
    om, nm = o.get("model"), n.get("model")
    if om is not None or nm is not None:  # a named model: its identity covers its files
        if (om or {}).get("sha256") != (nm or {}).get("sha256"):
            diffs.append(f"model: {_model_label(om)} vs {_model_label(nm)}")
    else:
        oc, nc = o.get("config") or {}, n["config"]
        if oc.get("sha256") != nc["sha256"]:
            diffs.append(f"config: {oc.get('file')} vs {nc['file']} (other content)")
        if oc.get("overrides") != nc["overrides"]:
            diffs.append(f"config overrides: {oc.get('overrides')} vs {nc['overrides']}")
        ow, nw = o.get("weights") or {}, n["weights"] or {}
        if ow.get("sha256") != nw.get("sha256"):
            diffs.append(f"weights: {ow.get('file')} vs {nw.get('file')} (other content)")
    ov, nv = o.get("vocabulary") or {}, n["vocabulary"]
    if ov.get("names") != nv["names"]:
        names = ov.get("names") or []
        diffs.append(
            f"vocabulary: {len(names)} names {_short(names)} vs {len(nv['names'])} names "
            f"{_short(nv['names'])}"
        )
    oe, ne = ov.get("embeddings") or {}, nv["embeddings"] or {}
    if oe.get("sha256") != ne.get("sha256"):
        diffs.append(
            f"vocabulary embeddings: {oe.get('file', 'none (--vocab)')} vs "
            f"{ne.get('file', 'none (--vocab)')}"
        )
    if o.get("score_thresh") != n["score_thresh"]:
        diffs.append(f"score threshold: {o.get('score_thresh')} vs {n['score_thresh']}")
    if o.get("vis") != n["vis"]:
        diffs.append(f"visualisation: {_onoff(o.get('vis'))} vs {_onoff(n['vis'])}")
    osam, nsam = o.get("sam") or {}, n.get("sam") or {}
    if (osam.get("type"), osam.get("sha256")) != (nsam.get("type"), nsam.get("sha256")):
        diffs.append(f"SAM (--sam): {osam.get('spec', 'none')} vs {nsam.get('spec', 'none')}")
    old_paths = [(i.get("id"), i.get("path")) for i in old.get("images", [])]
    new_paths = [(i["id"], i["path"]) for i in new["images"]]
    if old_paths != new_paths:
        first = next(
            (k for k, (a, b) in enumerate(zip(old_paths, new_paths)) if a != b),
            min(len(old_paths), len(new_paths)),
        )
        a = old_paths[first][1] if first < len(old_paths) else "(none)"
        b = new_paths[first][1] if first < len(new_paths) else "(none)"
        diffs.append(
            f"inputs: {len(old_paths)} images vs {len(new_paths)}, first difference at image id "
            f"{first + 1}: {a} vs {b}"
        )
    return diffs


def _model_label(model: dict[str, Any] | None) -> str:
    if model is None:
        return "--config/--weights"
    sha = str(model.get("sha256"))[:12]
    return f"{model.get('name')} ({model.get('kind')} {model.get('path')}, sha256 {sha})"


def _short(names: Sequence[str]) -> str:
    return str(list(names[:4]))[:-1] + (", ...]" if len(names) > 4 else "]")


def _onoff(flag: Any) -> str:
    return {True: "on", False: "off (--no-vis)"}.get(flag, str(flag))
