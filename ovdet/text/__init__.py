"""Text side of ovdet: text encoders, prompt templates, class embeddings and vocabularies.

Importing this package is cheap: open_clip and transformers are imported only when an
encoder of that kind is built.
"""

from ovdet.text.cache import VocabularyCache, default_cache_root
from ovdet.text.clip_models import (
    create_clip_from_config,
    create_clip_tokenizer,
    load_clip_config,
    tiny_clip_config,
)
from ovdet.text.embeddings import (
    build_class_embeddings,
    load_class_embeddings,
    names_path,
    save_class_embeddings,
)
from ovdet.text.encoder import TextEncoder
from ovdet.text.factory import build_text_encoder, parse_encoder_spec
from ovdet.text.hf_encoder import HFTextEncoder
from ovdet.text.hf_token_encoder import HFTokenEncoder
from ovdet.text.known_tokens import KnownTokens, UnknownTokensError
from ovdet.text.open_clip_encoder import OpenCLIPTextEncoder
from ovdet.text.open_clip_token_encoder import OpenCLIPTokenEncoder
from ovdet.text.templates import TEMPLATE_SET_NAMES, get_templates, validate_templates
from ovdet.text.token_encoder import (
    PromptTooLongError,
    TokenEncoder,
    TokenizedPrompt,
    build_prompt,
    char_spans_to_token_spans,
)
from ovdet.text.vocabulary import BUILTIN_VOCABULARIES, lvis_synonym_lists, resolve_vocabulary

__all__ = [
    "BUILTIN_VOCABULARIES",
    "TEMPLATE_SET_NAMES",
    "HFTextEncoder",
    "HFTokenEncoder",
    "KnownTokens",
    "OpenCLIPTextEncoder",
    "OpenCLIPTokenEncoder",
    "PromptTooLongError",
    "TextEncoder",
    "TokenEncoder",
    "TokenizedPrompt",
    "UnknownTokensError",
    "VocabularyCache",
    "build_class_embeddings",
    "build_prompt",
    "build_text_encoder",
    "char_spans_to_token_spans",
    "create_clip_from_config",
    "create_clip_tokenizer",
    "default_cache_root",
    "get_templates",
    "load_class_embeddings",
    "load_clip_config",
    "lvis_synonym_lists",
    "names_path",
    "parse_encoder_spec",
    "resolve_vocabulary",
    "save_class_embeddings",
    "tiny_clip_config",
    "validate_templates",
]
