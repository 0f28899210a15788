"""The README.md of a model bundle, written from its manifest."""

from __future__ import annotations

from typing import Any

__all__ = ["bundle_readme", "method_title"]


def method_title(method: str) -> str:
    """The display name of a method (``"rkd_ensemble"`` -> ``"RKD-ensemble"``)."""
    from ovdet.methods import METHODS

    registered = METHODS.get(method)
    return registered.title if registered is not None else method


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _ap(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.2f} MB" if num_bytes >= 1e5 else f"{num_bytes / 1e3:.1f} kB"


def _metric_rows(manifest: dict[str, Any], title: str) -> list[str]:
    method = manifest["method"]
    metrics = manifest["metrics"]
    run = metrics.get("training_run", {})
    rows = []
    if method != "vild_text" and "vild_text" in run:
        rows.append(("ViLD-text of the same run (fp32)", run["vild_text"]))
    if method in run:
        rows.append((f"{title}, the training run (fp32)", run[method]))
    rows.append((f"**{title} as shipped (fp16, re-evaluated)**", metrics.get("shipped_model_val")))
    return [
        f"| {label} | {_ap(m.get('AP50_base'))} | {_ap(m.get('AP50_novel'))} | "
        f"{_ap(m.get('AP50'))} |"
        for label, m in rows
        if m
    ]


def bundle_readme(manifest: dict[str, Any], *, notes: str | None = None) -> str:
    """README.md of a bundle: what it is, how to use it, the command that made it, how it
    was actually made (when that differs), files with checksums, metrics."""
    name, method = manifest["name"], manifest["method"]
    title = method_title(method)
    files = "\n".join(
        f"| `{f}` | {_size(info['bytes'])} | `{info['sha256']}` |"
        for f, info in manifest["files"].items()
    )
    teacher = manifest["metrics"].get("training_run", {}).get("teacher", {})
    made_by = manifest.get("made_by") or {}
    made = ""
    if made_by:
        made = "\nHow these files were actually made:\n\n" + "\n".join(
            f"- {key.replace('_', ' ')}: `{value}`" for key, value in made_by.items()
        )
        made += "\n"
    notes_text = f"\n{notes.strip()}\n" if notes else ""
    command = (
        manifest["command"] or f"ovdet bench ov-shapes --export-demo DIR --export-method {method}"
    )
    novel = manifest["novel"]
    token_encoder = manifest.get("token_encoder")
    written = (
        "ensemble settings such as the base class names and the\n  image-head temperature "
        "written in"
    )
    prompts = ""
    if token_encoder:  # a grounding detector: its token encoder is rebuilt on load
        written = "the training class names\n  written in, the token encoder rebuilt on load"
        prompts = (
            f"\n- Prompts: the text tower reads each class name as `{token_encoder['template']}`, "
            f"token by token\n  (at most {token_encoder['max_tokens']} tokens per prompt; a "
            "larger vocabulary is split into prompts);\n  loading checks that the prompts of "
            "the classes use only tokens the table keeps."
        )
    return f"""# {name}: {title} on OV-Shapes

{manifest["description"]}.

A small CLIP teacher's text tower and a {title} detector (`{method}`, docs/methods.md)
trained on the base boxes of OV-Shapes. Use it by name:

```
ovdet detect --model {name} --vocab "red circle,blue star" --input photos/ --output out/
ovdet demo --model {name}
```

or `OVPredictor.from_pretrained("{name}")` in Python; `ovdet models` lists it.

## Reproduce

One command trains the teacher, ViLD-text (its RPN gives the distillation methods their
region proposals) and the methods listed, then writes this folder:

```
{command}
```
{made}{notes_text}
Re-running the command reproduces these files up to floating-point nondeterminism (same data, seeds
and schedule); their checksums are recorded in `manifest.json` and checked on every load.

| file | size | sha256 |
|---|---|---|
{files}

- `detector.safetensors`: detector state_dict, floats in fp16 (restored to fp32 on load);
  `detector.yaml` its model LazyConfig, loadable on its own (vocabulary fields empty,
  training-only distillers removed, {written}).
- `teacher_text.safetensors` / `teacher_text.json`: the teacher's text tower (open_clip
  `{manifest["teacher_config"]}`), fp16; the token table holds only the tokens of the
  teacher's training text (other tokens never received a gradient and load as zeros).{prompts}
- Classes: {len(manifest["classes"])} ({len(manifest["base"])} base, {len(novel)} novel:
  {", ".join(novel)}); images {manifest["image_size"]} px.

## Metrics

Box AP50 on the val split of the run's dataset, every class in the vocabulary (teacher
zero-shot top-1 on the val object crops: base {_pct(teacher.get("top1_base"))}, novel \
{_pct(teacher.get("top1_novel"))}):

| model | AP50 base | AP50 novel | AP50 all |
|---|---|---|---|
{chr(10).join(_metric_rows(manifest, title))}
"""
