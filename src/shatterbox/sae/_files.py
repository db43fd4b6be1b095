"""SAE files of other tools read as factors, and ours written so that SAELens loads them.

Read: SAELens folders (``cfg.json`` + ``sae_weights.safetensors``; standard, TopK and JumpReLU), EleutherAI sparsify
folders (``cfg.json`` + ``sae.safetensors``; TopK), Gemma Scope (``params.npz``) and Gemma Scope 2
(``params.safetensors`` + ``config.json``; JumpReLU), and shatterbox's own factors files. Written: SAELens's layout.

Layers are shatterbox's hidden-state numbers (hidden state 0 is the embeddings, hidden state ``l`` the output of block
``l``): SAELens's ``blocks.L.hook_resid_post``, sparsify's ``layers.L`` and Gemma Scope's ``resid_post/layer_L`` are
hidden state ``L + 1``; ``blocks.L.hook_resid_pre`` is hidden state ``L``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shatterbox.errors import InputError
from shatterbox.factors import Factors, SparseAutoencoder, evaluate, importance, layer_vectors, levels, load_models, store_info
from shatterbox.store import Store, as_store

FORMATS = ("saelens", "sparsify", "gemmascope", "shatterbox")
HUB_IDS = {"default": "sentence-transformers/all-MiniLM-L6-v2", "gemma-3-270m": "google/gemma-3-270m"}
SAELENS_LAYOUT = "6.0.0"  # the SAELens config layout written (metadata nested; older layouts are converted on load)
READS = ("a SAELens folder (cfg.json + sae_weights.safetensors), a sparsify folder (cfg.json + sae.safetensors), "
         "Gemma Scope's params.npz or params.safetensors, or a shatterbox factors file")


@dataclass
class SaeFile:
    """An SAE read from a file: the model, where it came from and what the file says it reads.

    ``layer`` is the hidden state it encodes (None when the file does not say), ``model_name`` the model it was
    trained on (None when the file does not say), ``hook`` the file's own name for the place.
    """

    model: SparseAutoencoder
    format: str
    path: str
    layer: int | None = None
    model_name: str | None = None
    hook: str | None = None
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready description (no weights)."""
        return {"format": self.format, "path": self.path, "layer": self.layer, "model": self.model_name, "hook": self.hook,
                "width": self.model.n_factors, "d_in": self.model.n_features_in_, "activation": self.model.activation,
                "k": self.model.k if self.model.activation in ("topk", "batchtopk", "matryoshka") else None}


def read_sae(path: str | Path, *, format: str = "auto") -> SaeFile:
    """The SAE in ``path`` (a folder or a file of SAELens, sparsify, Gemma Scope or shatterbox; ``format`` "auto" tells
    them apart by their files).

    Examples:
        >>> import tempfile
        >>> from shatterbox.factors import SparseAutoencoder
        >>> x = np.abs(np.random.default_rng(0).normal(size=(256, 8))).astype(np.float32)
        >>> folder = save_saelens(SparseAutoencoder(n_factors=16, k=2, n_epochs=1).fit(x), tempfile.mkdtemp(), layer=3, model_name="default")
        >>> f = read_sae(folder)
        >>> f.format, f.layer, f.model.activation, f.model_name
        ('saelens', 3, 'topk', 'sentence-transformers/all-MiniLM-L6-v2')
    """
    path = Path(path)
    if format not in ("auto", *FORMATS):
        raise InputError(f"unknown SAE format {format!r}: use auto, {', '.join(FORMATS)}", parameter="format")
    if not path.exists():
        raise InputError(f"no SAE at {str(path)!r}: give {READS}")
    found = _detect(path) if format == "auto" else format
    reader = {"saelens": _read_saelens, "sparsify": _read_sparsify, "gemmascope": _read_gemmascope, "shatterbox": _read_shatterbox}[found]
    try:
        return reader(path)
    except (KeyError, json.JSONDecodeError, OSError, ValueError) as exc:
        raise InputError(f"{str(path)!r} is not a readable {found} SAE ({type(exc).__name__}: {exc}): give {READS}") from None


def _detect(path: Path) -> str:
    if path.is_file():
        if path.name in ("params.npz", "params.safetensors"):
            return "gemmascope"
        if path.suffix == ".safetensors":
            return "shatterbox"
        raise InputError(f"{str(path)!r} is not an SAE file shatterbox reads: give {READS}")
    names = {p.name for p in path.iterdir()}
    if "sae_weights.safetensors" in names:
        return "saelens"
    if "sae.safetensors" in names:
        return "sparsify"
    if names & {"params.npz", "params.safetensors"}:
        return "gemmascope"
    inner = sorted(p.name for p in path.iterdir() if p.is_dir() and (p / "cfg.json").exists())
    if inner:
        raise InputError(f"{str(path)!r} holds one SAE per place ({', '.join(inner[:6])}{' ...' if len(inner) > 6 else ''}): give one of those folders")
    raise InputError(f"{str(path)!r} holds no SAE shatterbox reads: give {READS}")


def _array(value) -> np.ndarray:
    """A float32 numpy copy of a tensor or array of any float dtype (bfloat16 included)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float32).cpu().numpy().copy()
    return np.asarray(value, np.float32).copy()


def _torch_tensors(file: Path) -> dict[str, np.ndarray]:
    from safetensors.torch import load_file

    return {k: _array(v) for k, v in load_file(str(file)).items()}


def hidden_of_hook(hook: str | None) -> int | None:
    """shatterbox's hidden-state number of a SAELens / TransformerLens or sparsify / Hugging Face hook name (None when unknown).

    Examples:
        >>> hidden_of_hook("blocks.9.hook_resid_post"), hidden_of_hook("blocks.2.hook_resid_pre"), hidden_of_hook("layers.5")
        (10, 2, 6)
        >>> hidden_of_hook("model.layers.3.output"), hidden_of_hook("blocks.1.attn.hook_z")
        (4, None)
    """
    if not hook:
        return None
    if m := re.fullmatch(r"blocks\.(\d+)\.hook_resid_(pre|post)", hook):
        return int(m[1]) + (m[2] == "post")
    if m := re.fullmatch(r"(?:model\.)?(?:gpt_neox\.|transformer\.)?(?:layers|h)\.(\d+)(?:\.output)?", hook):
        return int(m[1]) + 1
    if hook in ("embed_tokens", "model.embed_tokens", "hook_embed"):
        return 0
    return None


def _read_saelens(path: Path) -> SaeFile:
    cfg = json.loads((path / "cfg.json").read_text())
    meta = cfg.get("metadata") or {}
    architecture = cfg.get("architecture", "standard")
    activation = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}.get(architecture)
    if activation is None:
        raise InputError(f"{str(path)!r} is a SAELens {architecture!r} SAE: shatterbox reads standard, topk and jumprelu SAEs")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise InputError(f"{str(path)!r} normalises its inputs ({cfg['normalize_activations']!r}): shatterbox reads SAELens SAEs with "
                         "normalize_activations 'none' (fold the scaling into the weights first)")
    state = _torch_tensors(path / "sae_weights.safetensors")
    if cfg.get("rescale_acts_by_decoder_norm") and "W_dec" in state and "W_enc" in state:
        # codes of (pre · ‖W_dec‖) decoded through W_dec / ‖W_dec‖: the same SAE with the norms folded in (exact)
        norms = np.linalg.norm(state["W_dec"], axis=1).clip(1e-8)
        state["W_enc"], state["W_dec"] = state["W_enc"] * norms, state["W_dec"] / norms[:, None]
        state["b_enc"] = state["b_enc"] * norms
    if activation == "jumprelu" and "threshold" not in state and "log_threshold" in state:
        state["threshold"] = np.exp(state.pop("log_threshold"))
    model = _sae(state, activation, int(cfg.get("k", 1)), bool(cfg.get("apply_b_dec_to_input", True)), path)
    hook = meta.get("hook_name", cfg.get("hook_name"))
    return SaeFile(model, "saelens", str(path), hidden_of_hook(hook), meta.get("model_name", cfg.get("model_name")), hook, cfg)


def _read_sparsify(path: Path) -> SaeFile:
    cfg = json.loads((path / "cfg.json").read_text())
    if cfg.get("activation", "topk") != "topk" or cfg.get("transcode") or cfg.get("skip_connection"):
        raise InputError(f"{str(path)!r} is a sparsify {'transcoder' if cfg.get('transcode') else cfg.get('activation', 'topk')} "
                         f"{'with a skip connection ' if cfg.get('skip_connection') else ''}coder: shatterbox reads sparsify's TopK SAEs")
    raw = _torch_tensors(path / "sae.safetensors")
    state = {"W_enc": raw["encoder.weight"].T.copy(), "b_enc": raw["encoder.bias"], "W_dec": raw["W_dec"], "b_dec": raw["b_dec"]}
    model = _sae(state, "topk", int(cfg["k"]), True, path)
    return SaeFile(model, "sparsify", str(path), hidden_of_hook(path.name), None, path.name, cfg)


def _read_gemmascope(path: Path) -> SaeFile:
    folder = path if path.is_dir() else path.parent
    file = path if path.is_file() else next(folder / n for n in ("params.safetensors", "params.npz") if (folder / n).exists())
    if file.suffix == ".npz":
        with np.load(file) as data:
            raw = {k: np.asarray(data[k], np.float32) for k in data.files}
    else:
        raw = _torch_tensors(file)
    state = {("W_" + k[2:] if k.startswith("w_") else k): v for k, v in raw.items()}
    cfg = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    hook = cfg.get("hf_hook_point_in")
    layer = _gemmascope_layer(folder.as_posix()) if not hook else hidden_of_hook(hook)
    model = _sae(state, "jumprelu", 1, False, path)
    name = cfg.get("model_name")
    return SaeFile(model, "gemmascope", str(path), layer, name, hook, cfg)


def _gemmascope_layer(where: str) -> int | None:
    """The hidden state a Gemma Scope folder's name says (``.../resid_post/layer_9_...`` or ``gemma-scope-2b-pt-res/layer_9/...``
    is hidden state 10); None for other sites (MLP, attention, transcoders) or when it does not say."""
    numbers = re.findall(r"layer_(\d+)", where)
    if not numbers or not re.search(r"resid_post|resid_pre|-res(/|-|$)", where) or re.search(r"mlp|att|transcoder|clt", where):
        return None
    return int(numbers[-1]) + ("resid_pre" not in where)


def _read_shatterbox(path: Path) -> SaeFile:
    models, extra, _ = load_models(path)
    if len(models) != 1 or not isinstance(next(iter(models.values())), SparseAutoencoder):
        raise InputError(f"{str(path)!r} holds {'a sparse dictionary' if len(models) == 1 else 'one SAE per layer'}: "
                         "read one SAE per file (fit with --per-layer writes one file for all layers: use Factors.load)")
    layers = extra.get("layers") or [None]
    return SaeFile(next(iter(models.values())), "shatterbox", str(path), layers[0], (extra.get("store") or {}).get("model"), None, extra)


def _sae(state: dict[str, np.ndarray], activation: str, k: int, b_dec_in: bool, path: Path) -> SparseAutoencoder:
    missing = [name for name in ("W_enc", "W_dec", "b_enc", "b_dec") if name not in state]
    if missing:
        raise InputError(f"{str(path)!r} has no {', '.join(missing)}: an SAE file needs W_enc, W_dec, b_enc and b_dec")
    if activation == "jumprelu" and "threshold" not in state:
        raise InputError(f"{str(path)!r} is a JumpReLU SAE without its threshold: give the file with the threshold tensor")
    d_in, width = state["W_enc"].shape
    if state["W_dec"].shape != (width, d_in):
        raise InputError(f"{str(path)!r}: W_enc is {tuple(state['W_enc'].shape)} but W_dec is {tuple(state['W_dec'].shape)} (expected ({width}, {d_in}))")
    model = SparseAutoencoder(n_factors=width, activation=activation, k=max(1, min(k, width)), apply_b_dec_to_input=b_dec_in)
    keep = {name: np.ascontiguousarray(state[name], np.float32) for name in ("W_enc", "W_dec", "b_enc", "b_dec", "threshold") if name in state}
    if "threshold" in keep:
        keep["threshold"] = np.broadcast_to(keep["threshold"], (width,)).astype(np.float32)
    model._set_state(keep)
    return model


def save_saelens(sae: SparseAutoencoder | Factors, folder: str | Path, *, layer: int | None = None, model_name: str | None = None) -> Path:
    """Write an SAE (a fitted :class:`SparseAutoencoder`, or the layer ``layer`` model of :class:`Factors`) as a SAELens
    folder that ``sae_lens.SAE.load_from_disk`` loads: TopK and Matryoshka as ``topk``, BatchTopK and JumpReLU as
    ``jumprelu`` (with the threshold), ReLU as ``standard``. The factors' normalisation is folded into the weights, so the
    file reads raw activations. Returns the folder.

    Examples:
        >>> import tempfile
        >>> x = np.abs(np.random.default_rng(0).normal(size=(256, 8))).astype(np.float32)
        >>> sorted(p.name for p in save_saelens(SparseAutoencoder(n_factors=16, k=2, n_epochs=1).fit(x), tempfile.mkdtemp()).iterdir())
        ['cfg.json', 'sae_weights.safetensors']
    """
    from safetensors.numpy import save_file

    model, mean, scale, layer, model_name = _one_model(sae, layer, model_name)
    if model.activation not in ("topk", "matryoshka", "batchtopk", "jumprelu", "relu"):
        raise InputError(f"a {model.activation} SAE has no SAELens architecture")
    b_in = model.b_dec_ if model.apply_b_dec_to_input else np.zeros_like(model.b_dec_)
    state = {
        "W_enc": model.W_enc_ / scale,
        "b_enc": model.b_enc_ + (model.b_dec_ - b_in) @ model.W_enc_,
        "W_dec": model.components_ * scale,
        "b_dec": model.b_dec_ * scale + mean,
    }
    architecture = {"topk": "topk", "matryoshka": "topk", "batchtopk": "jumprelu", "jumprelu": "jumprelu", "relu": "standard"}[model.activation]
    if architecture == "jumprelu":
        state["threshold"] = np.broadcast_to(model.threshold_, (model.n_factors,))
    hub = HUB_IDS.get(model_name, model_name) if model_name else None
    meta = {"sae_lens_version": SAELENS_LAYOUT, "model_name": hub, "hook_name": None if layer is None else hook_of_hidden(layer), "prepend_bos": True,
            "shatterbox": {"activation": model.activation, "hidden_state": layer}}
    cfg = {"architecture": architecture, "d_in": model.n_features_in_, "d_sae": model.n_factors, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none", "metadata": meta}
    if architecture == "topk":
        cfg["k"] = model.k
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in state.items()}, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=1))
    return folder


def hook_of_hidden(layer: int) -> str:
    """The TransformerLens hook name of hidden state ``layer``: ``blocks.{layer-1}.hook_resid_post`` (``blocks.0.hook_resid_pre`` for 0).

    Examples:
        >>> hook_of_hidden(10), hook_of_hidden(0)
        ('blocks.9.hook_resid_post', 'blocks.0.hook_resid_pre')
    """
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


def _one_model(sae: SparseAutoencoder | Factors, layer: int | None, model_name: str | None):
    if isinstance(sae, Factors):
        if layer is None and len(sae.layers) != 1:
            raise InputError(f"these factors code layers {sae.layers}: choose one with layer=", parameter="layer")
        layer = sae.layer_of(layer)
        model = sae.models[layer]
        if not isinstance(model, SparseAutoencoder):
            raise InputError("these factors are a sparse dictionary (fista): only SAEs have an encoder SAELens can load; fit with kind=sae")
        return model, sae.mean[layer].astype(np.float32), float(sae.scale[layer]), layer, model_name or sae.store.get("model")
    if not isinstance(sae, SparseAutoencoder):
        raise InputError(f"save_saelens writes a SparseAutoencoder or Factors of SAEs, not {type(sae).__name__}")
    sae._check_fitted()
    return sae, np.zeros(sae.n_features_in_, np.float32), 1.0, layer, model_name


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two model names (a shatterbox name, a Hugging Face id, a Gemma Scope name) mean the same model (True when
    either is unknown).

    Examples:
        >>> same_model("gemma-3-270m", "google/gemma-3-270m"), same_model("gemma-v3-270m-pt", "gemma-3-270m"), same_model("gpt2", "gemma-3-270m")
        (True, True, False)
    """
    if not a or not b:
        return True

    def key(name: str) -> str:
        name = HUB_IDS.get(name, name).lower().rsplit("/", 1)[-1].replace("-v3", "-3")
        return name.removesuffix("-pt")

    return key(a) == key(b)


def sae_factors(sae: SaeFile | str | Path, store: Store | str | Path, *, layer: int | None = None, max_tokens: int = 50_000,
                heldout: float = 0.1, seed: int = 0) -> Factors:
    """An SAE of another tool as :class:`~shatterbox.factors.Factors` of ``store`` (at hidden state ``layer``, default
    the one its file names), scored on the store's held-out tokens like a fit of ours: every factors analysis (show,
    neurons explain, projector colouring, ablation, steering) then takes it. Refused when its width, model or layer
    does not match the store.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="2")
        >>> x = np.random.default_rng(0).normal(size=(256, 384)).astype(np.float32)
        >>> folder = save_saelens(SparseAutoencoder(n_factors=64, k=4, n_epochs=1).fit(x), tempfile.mkdtemp(), layer=2, model_name="default")
        >>> f = sae_factors(folder, s)
        >>> f.layers, f.n_factors, f.store["sae"]["format"]
        ([2], 64, 'saelens')
    """
    file = sae if isinstance(sae, SaeFile) else read_sae(sae)
    store = as_store(store)
    chosen = layer if layer is not None else file.layer
    have = store.layers("hidden")
    if chosen is None:
        raise InputError(f"{file.path!r} does not say which layer it reads: choose one of the store's hidden layers {have} with layer=", parameter="layer")
    if chosen not in have:
        raise InputError(f"this SAE reads hidden state {chosen}{f' ({file.hook})' if file.hook else ''} but the store has hidden layers {have}: "
                         f"harvest that layer (--layers {chosen}) or choose another with layer=", parameter="layer")
    if not same_model(file.model_name, store.model):
        raise InputError(f"this SAE was trained on {file.model_name!r} but the store holds {store.model!r}: harvest a store of that model")
    width = store.width(f"hidden_{chosen}")
    if file.model.n_features_in_ != width:
        raise InputError(f"this SAE reads {file.model.n_features_in_}-dimensional vectors but the store's hidden states have {width}: "
                         "use a store of the model it was trained on")
    vectors = layer_vectors(store, [chosen], max_tokens=max_tokens, heldout=heldout, seed=seed)
    mean, scale = vectors.mean[chosen], vectors.scale[chosen]
    train, held = vectors.train[chosen] * scale + mean, vectors.heldout[chosen] * scale + mean  # the SAE reads raw activations
    curves = importance({chosen: file.model.transform(train)})
    info = store_info(store) | {"sae": file.to_dict()}
    return Factors({chosen: file.model}, [chosen], {chosen: np.zeros(width, np.float32)}, {chosen: 1.0},
                   {chosen: evaluate(file.model, held, train)}, curves, levels(curves, [chosen]), info)
