"""Grounding R-CNN: a two-stage detector whose classes are phrases of a text prompt."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from detectron2.modeling.meta_arch import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import ImageList, Instances
from torch import nn

from ovdet.methods.grounding.chunks import merge_detections, pad_prompts, reuse_unfused_rpn_levels
from ovdet.methods.grounding.fusion import FeatureTextFusion
from ovdet.methods.grounding.prompts import positive_map, split_into_prompts
from ovdet.methods.grounding.region_word import TextContext
from ovdet.methods.grounding.roi_heads import GroundingROIHeads
from ovdet.text.token_encoder import PromptTooLongError, TokenEncoder, TokenizedPrompt
from ovdet.text.vocabulary import validate_names
from ovdet.utils.errors import InputError

__all__ = ["GroundingRCNN"]


@META_ARCH_REGISTRY.register()
class GroundingRCNN(GeneralizedRCNN):
    """GLIP-style grounding in a detectron2 two-stage detector, for any vocabulary size.

    Per image: backbone + FPN once; then, per prompt: tokens from the (frozen) token encoder,
    a learned input projection (Grounding DINO's ``feat_map``), K layers of bidirectional
    image-text fusion on the FPN outputs (:class:`FeatureTextFusion`), the RPN on the fused
    features, and :class:`GroundingROIHeads` whose class logits are region-token alignment
    scores. Training prompts are the names of the batch's classes plus sampled negatives (at
    most ``max_train_phrases``, shuffled: GLIP's recipe); at inference the vocabulary is split
    into prompts that fit the encoder's token limit (chunks, encoded once and cached per
    vocabulary), fusion and heads run per chunk on the same backbone features, and the
    detections are merged (per-class NMS, top-k).

    The phrase readout is the box predictor's ``aggregation``. With ``"eot"`` each class name
    is encoded as its own sequence and represented by ONE token, its end-of-text (sentence)
    state (:meth:`~ovdet.text.TokenEncoder.encode_sentences`: the teacher's sentence
    embedding of the templated name, ViLD-text's classifier row): a prompt of P names is P
    tokens, the fusion attends over them, a box's positive is its class's token and a class's
    score is that token's probability. (In a shared prompt of word tokens a CLIP name's EOT
    would not be its own; :class:`~ovdet.text.OpenCLIPTokenEncoder` reads every name alone
    anyway, so the sentence token equals that name's EOT token in a word prompt.)

    Model I/O is detectron2's; ``pred_classes`` index :attr:`vocabulary`.

    Caption training (grounding data, GLIP's "modulated" format): when the training inputs
    carry ``caption``, ``tokens_positive`` (per phrase, its ``[start, end]`` character spans)
    and ``instances.gt_phrases`` (each box's phrase; ``OVDatasetMapper(grounding=True)``
    makes them), each image's prompt is its caption, read by the token encoder with the spans
    mapped to tokens by the tokenizer's offsets, and a box's positive map is its phrase's
    tokens; no negative names are added (the caption is the prompt). Captions differ per
    image, so fusion, RPN and ROI heads run per image (the backbone once per batch) and the
    losses are averaged over the images. A phrase cut off by the encoder's token limit makes
    its boxes ignore regions (neither object nor background).

    Args:
        token_encoder: a :class:`~ovdet.text.TokenEncoder` (not a sub-module: frozen, not
            saved in checkpoints).
        train_vocabulary: names of the training classes (dataset contiguous ids).
        vocabulary: inference class names (default: the training ones).
        fusion_layers: K (0: the no-fusion ablation).
        fusion_in_features: FPN levels fused (default: the RPN's).
        fusion_embed_dim, fusion_heads, fusion_ffn_dim, fusion_layer_scale: see
            :class:`~ovdet.methods.grounding.fusion.BiAttentionLayer`.
        fusion_attention: ``"fused"`` (default: fused attention kernels) or ``"explicit"``
            (the reference logit matrix; see ``BiAttentionLayer``).
        text_dim: token width inside the detector (the encoder's is projected to it).
        max_train_phrases: phrases per training prompt (GLIP: 85).
        train_negatives: training classes that may be sampled as negatives (default all;
            OV-LVIS: the base classes, so rare names are never seen in training).
        max_test_phrases: phrases per inference chunk (GLIP's LVIS evaluation: 40); None:
            as many as the token limit allows.
        test_chunk_batch: prompt chunks run together at inference, as one batch (the image
            features repeated per chunk): the same detections as one chunk at a time (tested),
            fewer and larger kernels; on a GPU the per-chunk passes are otherwise bound by
            launch overhead (docs/grounding.md, Speed). Memory grows with it (the FPN features
            of every image, once per chunk of the group); 1 runs the chunks one at a time.
            None (default): 8 on a GPU, 1 on the CPU, where batching gains nothing.
        vocabulary_cache_size: encoded vocabularies kept (LRU).
        freeze_text_projection: keep the text side's projections fixed: ``text_input``
            (orthogonal at init) and the box predictor's ``text_proj`` (made orthogonal, no
            bias) are not trained, so the tokens entering the fusion and the region-token
            scores are the encoder's features up to a fixed rotation (with square
            projections). The fusion still updates the tokens when ``fusion_layers > 0``.
        kwargs: :class:`GeneralizedRCNN` arguments (``backbone``, ``proposal_generator``,
            ``roi_heads``, ``pixel_mean``, ``pixel_std``, ``input_format``).
    """

    def __init__(
        self,
        *,
        token_encoder: TokenEncoder,
        train_vocabulary: Sequence[str],
        vocabulary: Sequence[str] | None = None,
        fusion_layers: int = 2,
        fusion_in_features: Sequence[str] | None = None,
        fusion_embed_dim: int = 128,
        fusion_heads: int = 4,
        fusion_ffn_dim: int = 512,
        fusion_layer_scale: float = 1e-4,
        fusion_attention: str = "fused",
        text_dim: int = 256,
        max_train_phrases: int = 85,
        train_negatives: Sequence[str] | None = None,
        max_test_phrases: int | None = None,
        test_chunk_batch: int | None = None,
        vocabulary_cache_size: int = 8,
        freeze_text_projection: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.roi_heads, GroundingROIHeads):
            raise TypeError(
                f"GroundingRCNN: roi_heads must be GroundingROIHeads, got "
                f"{type(self.roi_heads).__name__}"
            )
        if not isinstance(token_encoder, TokenEncoder):
            raise TypeError(
                f"GroundingRCNN: token_encoder must be an ovdet.text.TokenEncoder "
                f"(HFTokenEncoder, OpenCLIPTokenEncoder), got {type(token_encoder).__name__}"
            )
        self.token_encoder = token_encoder
        self.train_vocabulary = validate_names(train_vocabulary, "GroundingRCNN(train_vocabulary)")
        if len(self.train_vocabulary) != self.roi_heads.num_classes:
            raise ValueError(
                f"GroundingRCNN: {len(self.train_vocabulary)} training class names but the ROI "
                f"heads train {self.roi_heads.num_classes} classes"
            )
        if max_train_phrases < 1:
            raise ValueError(f"GroundingRCNN: max_train_phrases must be >= 1: {max_train_phrases}")
        self.max_train_phrases = int(max_train_phrases)
        allowed = torch.ones(len(self.train_vocabulary), dtype=torch.bool)
        if train_negatives is not None:
            row = {n: i for i, n in enumerate(self.train_vocabulary)}
            negatives = validate_names(train_negatives, "GroundingRCNN(train_negatives)")
            unknown = [n for n in negatives if n not in row]
            if unknown:
                raise ValueError(
                    f"GroundingRCNN: train_negatives {unknown[:5]} are not training classes"
                )
            allowed[:] = False
            allowed[[row[n] for n in negatives]] = True
        self.register_buffer("_negative_ok", allowed, persistent=False)
        self.max_test_phrases = max_test_phrases
        if test_chunk_batch is not None and int(test_chunk_batch) < 1:
            raise ValueError(f"GroundingRCNN: test_chunk_batch must be >= 1: {test_chunk_batch}")
        self.test_chunk_batch = None if test_chunk_batch is None else int(test_chunk_batch)
        self.text_input = nn.Linear(int(token_encoder.dim), int(text_dim))
        # orthogonal: the frozen encoder's geometry (which novel names rely on) is kept at init
        nn.init.orthogonal_(self.text_input.weight)
        nn.init.zeros_(self.text_input.bias)
        self.freeze_text_projection = bool(freeze_text_projection)
        if self.freeze_text_projection:
            self.text_input.requires_grad_(False)
            self.roi_heads.box_predictor.freeze_text_projection()
        if self.sentence_tokens and not token_encoder.has_sentence_tokens:
            raise ValueError(
                f"GroundingRCNN: the 'eot' readout reads each class from its own sentence token, "
                f"which {type(token_encoder).__name__} does not give; use OpenCLIPTokenEncoder or "
                "the 'mean' / 'max' readout"
            )
        levels = list(fusion_in_features or self.proposal_generator.in_features)
        shapes = self.backbone.output_shape()
        widths = {shapes[f].channels for f in levels}
        if len(widths) != 1:
            raise ValueError(f"GroundingRCNN: fused levels {levels} differ in width: {widths}")
        self.fusion = FeatureTextFusion(
            in_features=levels,
            image_dim=widths.pop(),
            text_dim=int(text_dim),
            num_layers=int(fusion_layers),
            embed_dim=fusion_embed_dim,
            num_heads=fusion_heads,
            ffn_dim=fusion_ffn_dim,
            layer_scale=fusion_layer_scale,
            attention=fusion_attention,
        )
        if vocabulary_cache_size < 1:
            raise ValueError("GroundingRCNN: vocabulary_cache_size must be >= 1")
        self.vocabulary_cache_size = int(vocabulary_cache_size)
        self._prompt_cache: OrderedDict[tuple, list[TokenizedPrompt]] = OrderedDict()
        self._vocabulary = (
            list(self.train_vocabulary)
            if vocabulary is None
            else validate_names(vocabulary, "GroundingRCNN(vocabulary)")
        )

    # ------------------------------------------------------------------ readout
    @property
    def readout(self) -> str:
        """The phrase readout (``"mean"``, ``"max"`` or ``"eot"``): the box predictor's."""
        return self.roi_heads.box_predictor.aggregation

    @property
    def sentence_tokens(self) -> bool:
        """Whether prompts are sentence tokens, one per name (the ``"eot"`` readout)."""
        return self.readout == "eot"

    def encode_names(self, names: Sequence[str]) -> TokenizedPrompt:
        """One prompt of class names, as the readout needs it: sentence tokens (``"eot"``) or
        the word tokens of a prompt."""
        if self.sentence_tokens:
            return self.token_encoder.encode_sentences(names)
        return self.token_encoder.encode_prompt(names)

    def split_names(self, names: Sequence[str], max_phrases: int | None) -> list[list[str]]:
        """``names`` in consecutive prompts that fit the encoder (:func:`split_into_prompts`)."""
        return split_into_prompts(
            names, self.token_encoder, max_phrases=max_phrases, sentences=self.sentence_tokens
        )

    # ------------------------------------------------------------------ vocabulary
    @property
    def text_encoder(self) -> TokenEncoder:
        """The token encoder (the name ``OVPredictor`` looks for)."""
        return self.token_encoder

    @property
    def vocabulary(self) -> list[str]:
        """Class names of the inference vocabulary; ``pred_classes`` index this list."""
        return list(self._vocabulary)

    def set_vocabulary(self, names: Sequence[str], names_for_embeddings=None) -> None:
        """Change the inference vocabulary (any size: it is split into prompts)."""
        if isinstance(names, torch.Tensor) or names_for_embeddings is not None:
            raise TypeError(
                "GroundingRCNN scores regions against the tokens of class names, not against "
                "class embeddings; pass the class names"
            )
        self._vocabulary = validate_names(names, "set_vocabulary(names)")

    def vocabulary_prompts(self) -> list[TokenizedPrompt]:
        """The encoded prompt chunks of the current vocabulary (memoised, LRU)."""
        key = (
            self.token_encoder.identity,
            tuple(self._vocabulary),
            self.max_test_phrases,
            self.sentence_tokens,
        )
        prompts = self._prompt_cache.get(key)
        if prompts is None:
            chunks = self.split_names(self._vocabulary, self.max_test_phrases)
            prompts = [self.encode_names(c) for c in chunks]
            self._prompt_cache[key] = prompts
            while len(self._prompt_cache) > self.vocabulary_cache_size:
                self._prompt_cache.popitem(last=False)
        else:
            self._prompt_cache.move_to_end(key)
        return prompts

    @property
    def chunk_batch(self) -> int:
        """Prompt chunks per inference pass: ``test_chunk_batch``, or by device when None."""
        if self.test_chunk_batch is not None:
            return self.test_chunk_batch
        return 8 if self.device.type == "cuda" else 1

    def clear_vocabulary_cache(self) -> None:
        self._prompt_cache.clear()

    # ------------------------------------------------------------------ prompts
    def _training_prompt(self, gt_instances: list[Instances]) -> tuple[TokenizedPrompt, list[int]]:
        """GLIP's detection prompt: the batch's classes, then random negatives, shuffled."""
        num = len(self.train_vocabulary)
        present = torch.unique(torch.cat([x.gt_classes.cpu() for x in gt_instances]))
        present = present[(present >= 0) & (present < num)]
        is_present = torch.zeros(num, dtype=torch.bool)
        is_present[present] = True
        absent = _absent(is_present | ~self._negative_ok.cpu())
        order = torch.cat([present[torch.randperm(len(present))], absent])
        names = [self.train_vocabulary[i] for i in order.tolist()]
        chosen = self.split_names(names, self.max_train_phrases)[0]
        picked = order[: len(chosen)]
        picked = picked[torch.randperm(len(picked))]
        return self._encode([self.train_vocabulary[i] for i in picked.tolist()]), picked.tolist()

    def _encode(self, phrases: list[str]) -> TokenizedPrompt:
        key = (self.token_encoder.identity, tuple(phrases), "train", self.sentence_tokens)
        prompt = self._prompt_cache.get(key)
        if prompt is None:
            prompt = [self.encode_names(phrases)]
            self._prompt_cache[key] = prompt
            while len(self._prompt_cache) > max(self.vocabulary_cache_size, 64):
                self._prompt_cache.popitem(last=False)
        return prompt[0]

    def fuse(
        self,
        features: dict[str, torch.Tensor],
        prompt: TokenizedPrompt,
        classes: list[int] | None = None,
        cache: dict | None = None,
    ) -> tuple[dict[str, torch.Tensor], TextContext]:
        """Fuse ``prompt`` into the FPN features.

        Args:
            features: backbone (FPN) features, each (N, C, H, W).
            prompt: an encoded prompt.
            classes: training only: the training class of each phrase.
            cache: inference over several prompts of the same ``features``: a dict kept
                across the calls (see :class:`FeatureTextFusion`).

        Returns:
            fused features and the :class:`TextContext` for the ROI heads.
        """
        tokens = self.text_input(prompt.features.to(self.device))[None]
        mask = prompt.mask.to(self.device)
        fused, tokens = self.fusion(features, tokens, mask[None], cache=cache)
        phrase_map = positive_map(prompt.spans, prompt.num_tokens).to(self.device)
        rows = None
        if classes is not None:
            rows = torch.full((len(self.train_vocabulary),), -1, dtype=torch.long)
            rows[torch.as_tensor(classes, dtype=torch.long)] = torch.arange(len(classes))
            rows = rows.to(self.device)
        return fused, TextContext(tokens=tokens, mask=mask, phrase_map=phrase_map, class_rows=rows)

    def fuse_prompts(
        self,
        features: dict[str, torch.Tensor],
        prompts: Sequence[TokenizedPrompt],
        cache: dict | None = None,
    ) -> tuple[dict[str, torch.Tensor], TextContext]:
        """Fuse G prompts at once into the features of N images (inference).

        The prompts are padded to the longest (padding tokens masked) and stacked
        prompt-major: row ``g * N + n`` of the fused levels and tokens is prompt g on image n.
        Levels that are not fused keep batch N.

        Returns:
            fused features and a :class:`TextContext` with (G * N, L) masks and G * N phrase
            maps (one per row).
        """
        n = next(iter(features.values())).shape[0]
        feats, masks = pad_prompts(prompts)
        length = feats.shape[1]
        tokens = self.text_input(feats.to(self.device)).repeat_interleave(n, dim=0)
        masks = masks.to(self.device).repeat_interleave(n, dim=0)
        fused, tokens = self.fusion(features, tokens, masks, cache=cache)
        maps = [positive_map(p.spans, length).to(self.device) for p in prompts]
        return fused, TextContext(
            tokens=tokens, mask=masks, phrase_map=[m for m in maps for _ in range(n)]
        )

    # ------------------------------------------------------------------ forward
    def forward(self, batched_inputs: list[dict]):
        """detectron2 model call: training losses, or ``[{"instances": ...}]`` per image."""
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        if "instances" not in batched_inputs[0]:
            raise InputError("GroundingRCNN training needs 'instances' in the input dicts")
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        features = self.backbone(images.tensor)
        with_caption = ["caption" in x for x in batched_inputs]
        if any(with_caption):
            if not all(with_caption):
                raise InputError(
                    "GroundingRCNN: a training batch mixes inputs with and without 'caption'; "
                    "train on grounding data alone (or on detection data alone)"
                )
            return self._caption_losses(images, features, batched_inputs, gt_instances)
        prompt, classes = self._training_prompt(gt_instances)
        fused, text = self.fuse(features, prompt, classes)
        proposals, proposal_losses = self.proposal_generator(images, fused, gt_instances)
        _, detector_losses = self.roi_heads(images, fused, proposals, gt_instances, text=text)
        return {**detector_losses, **proposal_losses}

    def caption_prompt(
        self, caption: str, tokens_positive: Sequence, gt_phrases: torch.Tensor | None = None
    ) -> tuple[TokenizedPrompt, torch.Tensor | None]:
        """The prompt of one caption with its phrases' character spans.

        Args:
            caption: the text.
            tokens_positive: per phrase, a list of ``[start, end]`` character spans.
            gt_phrases: each box's phrase index (-1: ignore region), or None.

        Returns:
            the encoded caption (one phrase per entry of ``tokens_positive``; a caption
            without phrases gets one phrase over the whole text, used by no box) and
            ``gt_phrases`` with the boxes of phrases past the encoder's token limit set to -1
            (those phrases then cover the caption's last token, used by no box).
        """
        phrases = [[tuple(int(v) for v in span) for span in p] for p in tokens_positive]
        if not phrases:
            return self.token_encoder.encode_caption(caption, [(0, len(caption))]), gt_phrases
        kept = list(range(len(phrases)))
        while True:
            try:
                prompt = self.token_encoder.encode_caption(caption, [phrases[i] for i in kept])
                break
            except PromptTooLongError:
                if len(kept) == 1:
                    prompt = self.token_encoder.encode_caption(caption, [(0, 1)])
                    kept = []
                    break
                kept.remove(max(kept, key=lambda i: max(e for _, e in phrases[i])))
        if len(kept) == len(phrases):
            return prompt, gt_phrases
        # phrases cut off: their boxes are ignored; every phrase keeps a row (unused ones
        # point at the first token, so the row indices stay those of tokens_positive)
        spans = [(0, 1)] * len(phrases)
        for row, i in enumerate(kept):
            spans[i] = prompt.spans[row]
        if gt_phrases is not None:
            gone = torch.tensor([i not in kept for i in range(len(phrases))], dtype=torch.bool)
            gt_phrases = gt_phrases.clone()
            valid = gt_phrases >= 0
            drop = valid.clone()
            drop[valid] = gone.to(gt_phrases.device)[gt_phrases[valid]]
            gt_phrases[drop] = -1
        prompt = TokenizedPrompt(
            tuple(caption[p[0][0] : p[-1][1]] for p in phrases),
            prompt.text,
            prompt.features,
            prompt.mask,
            tuple(spans),
        )
        return prompt, gt_phrases

    def _caption_losses(
        self,
        images: ImageList,
        features: dict[str, torch.Tensor],
        batched_inputs: list[dict],
        gt_instances: list[Instances],
    ) -> dict[str, torch.Tensor]:
        """Caption training (see the class docstring): per image, its caption as the prompt."""
        num_classes = len(self.train_vocabulary)
        total: dict[str, torch.Tensor] = {}
        for i, (x, gt) in enumerate(zip(batched_inputs, gt_instances)):
            where = f"GroundingRCNN caption training, input {i}"
            if "tokens_positive" not in x or not gt.has("gt_phrases"):
                raise InputError(
                    f"{where}: a 'caption' needs 'tokens_positive' and instances.gt_phrases "
                    "(OVDatasetMapper(grounding=True) on a grounding dataset makes them)"
                )
            phrases = list(x["tokens_positive"])
            if len(phrases) > num_classes:
                raise InputError(
                    f"{where}: {len(phrases)} phrases in one caption, more than the "
                    f"{num_classes} labels the ROI heads have (the training classes)"
                )
            prompt, gt_phrases = self.caption_prompt(x["caption"], phrases, gt.gt_phrases)
            if len(gt_phrases) and int(gt_phrases.max()) >= len(phrases):
                raise InputError(f"{where}: gt_phrases index past tokens_positive")
            # the ROI heads label a box by its phrase: class p of this image is phrase p
            target = Instances(gt.image_size, **gt.get_fields())
            target.gt_classes = gt_phrases.to(gt.gt_classes.device)
            image = ImageList(images.tensor[i : i + 1], [images.image_sizes[i]])
            feats = {k: v[i : i + 1] for k, v in features.items()}
            fused, text = self.fuse(feats, prompt, list(range(len(prompt.spans))))
            proposals, proposal_losses = self.proposal_generator(image, fused, [target])
            _, detector_losses = self.roi_heads(image, fused, proposals, [target], text=text)
            for k, v in {**detector_losses, **proposal_losses}.items():
                total[k] = total[k] + v if k in total else v
        return {k: v / len(batched_inputs) for k, v in total.items()}

    def inference(
        self,
        batched_inputs: list[dict],
        detected_instances=None,
        do_postprocess: bool = True,
    ) -> list[dict] | list[Instances]:
        """Detect every class of :attr:`vocabulary`: backbone once, fusion and heads per
        prompt chunk, merged."""
        if detected_instances is not None:
            raise NotImplementedError("GroundingRCNN does not take given boxes")
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        predictor = self.roi_heads.box_predictor
        per_chunk: list[list[Instances]] = []
        offset = 0
        cache: dict = {}
        prompts = self.vocabulary_prompts()
        n = len(batched_inputs)
        with reuse_unfused_rpn_levels(self.proposal_generator.rpn_head, features) as reused:
            step = self.chunk_batch
            for start in range(0, len(prompts), step):
                group = prompts[start : start + step]
                results = self._detect_prompts(images, features, group, cache, reused)
                for g, prompt in enumerate(group):
                    chunk = results[g * n : (g + 1) * n]
                    for r in chunk:
                        r.pred_classes = r.pred_classes + offset
                    per_chunk.append(chunk)
                    offset += len(prompt.phrases)
        results = [
            merge_detections(
                [chunk[i] for chunk in per_chunk],
                predictor.test_nms_thresh,
                predictor.test_topk_per_image,
            )
            for i in range(len(batched_inputs))
        ]
        if do_postprocess:
            return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)
        return results

    def _detect(
        self, images, features, prompt: TokenizedPrompt, cache: dict | None = None
    ) -> list[Instances]:
        """Detections of one prompt on N images."""
        return self._detect_prompts(images, features, [prompt], cache)

    def _detect_prompts(
        self,
        images,
        features,
        prompts: Sequence[TokenizedPrompt],
        cache: dict | None = None,
        rpn_reuse: bool = False,
    ) -> list[Instances]:
        """Detections of G prompts on N images in one pass (prompt-major: ``g * N + n``);
        ``rpn_reuse``: inside :func:`reuse_unfused_rpn_levels` (the RPN head then takes levels
        of batch N beside fused ones of batch G * N)."""
        fused, text = self.fuse_prompts(features, prompts, cache=cache)
        n, repeats = len(images), len(prompts)
        tiled = {
            name: f if f.shape[0] == n * repeats else f.repeat(repeats, 1, 1, 1)
            for name, f in fused.items()
        }
        if repeats == 1 or all(f.shape[0] == n for f in fused.values()):
            # one prompt, or nothing fused (K = 0): one RPN pass serves every prompt
            proposals, _ = self.proposal_generator(images, fused, None)
            proposals = proposals * repeats
        else:  # levels not fused have batch N: the RPN reuse repeats their outputs, else tile
            rpn_in = fused if rpn_reuse else tiled
            sizes = ImageList(images.tensor, list(images.image_sizes) * repeats)
            proposals, _ = self.proposal_generator(sizes, rpn_in, None)
        results, _ = self.roi_heads(images, tiled, proposals, None, text=text)
        return results

    def ground(
        self,
        batched_inputs: list[dict],
        caption: str,
        phrases: Sequence[str] | None = None,
        spans: Sequence | None = None,
    ) -> list[dict]:
        """Phrase grounding: boxes for the phrases of one caption.

        Args:
            batched_inputs: detectron2 input dicts (``image``, optional ``height``/``width``).
            caption: the caption, e.g. ``"a red circle left of two blue squares"``.
            phrases: phrases of the caption (each found at its first occurrence), or
            spans: their ``(start, end)`` character spans (or lists of spans).

        Returns:
            ``[{"instances": Instances}]`` per image; ``pred_classes`` index the phrases.
        """
        if (phrases is None) == (spans is None):
            raise InputError("ground: pass either phrases or spans (one of them)")
        if self.sentence_tokens:
            raise InputError(
                "ground: the 'eot' readout scores class names by their own sentence tokens, "
                "not phrases inside a caption; use a model with the 'mean' or 'max' readout"
            )
        if phrases is not None:
            spans = []
            for i, phrase in enumerate(validate_names(phrases, "ground(phrases)")):
                start = caption.find(phrase)
                if start < 0:
                    raise InputError(
                        f"ground: phrase {i} ({phrase!r}) is not in the caption {caption!r}"
                    )
                spans.append((start, start + len(phrase)))
        prompt = self.token_encoder.encode_caption(caption, spans)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                images = self.preprocess_image(batched_inputs)
                features = self.backbone(images.tensor)
                results = self._detect(images, features, prompt)
        finally:
            self.train(was_training)
        return GeneralizedRCNN._postprocess(results, batched_inputs, images.image_sizes)


def _absent(is_present: torch.Tensor) -> torch.Tensor:
    absent = (~is_present).nonzero().flatten()
    return absent[torch.randperm(len(absent))]
