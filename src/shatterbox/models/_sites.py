"""Where a forward pass can be read or changed: the modules behind each component of a transformer.

Every component is reached through a hook on an unmodified Hugging Face module:

* ``hidden`` *h* (the residual stream; 0 = the embeddings, *h* = the output of block *h*): a forward hook on block
  *h* (its output), or a forward pre-hook on block 1 for *h* = 0 (its input);
* ``head`` *l*, *k*: the input of layer *l*'s attention output projection, columns of head *k* (before the
  projection mixes the heads, so each head's share is separable);
* ``attn`` *l*: the output of that projection (every head together);
* ``mlp`` *l*: the output of layer *l*'s MLP down projection; ``neuron`` *l*, *u*: column *u* of its input.
"""

from __future__ import annotations

import re

from torch import nn

from shatterbox.models._recorder import layer_modules, mlp_modules

# Attention output projections (their input holds every head's output side by side), by Hugging Face module name.
_ATTENTION_OUT = re.compile(
    r"(layers?|h|blocks?)\.\d+\.(attention\.output\.dense|attention\.out_lin|attn\.c_proj|self_attn\.o_proj|"
    r"self_attn\.out_proj|attn\.out_proj|attention\.dense|self_attention\.dense)$"
)

COMPONENTS = ("hidden", "head", "attn", "mlp", "neuron")

# The norm a decoder applies after its last block, before the unembedding, by Hugging Face module name.
_FINAL_NORM = re.compile(r"^(model\.|transformer\.|gpt_neox\.|model\.decoder\.|decoder\.)?(norm|ln_f|final_layer_norm|final_layernorm|norm_f)$")


def attention_out_modules(model: nn.Module) -> list[nn.Module]:
    """Each layer's attention output projection, in layer order (empty where the naming is unknown).

    Examples:
        >>> from shatterbox.models import load
        >>> len(attention_out_modules(load().model))
        6
    """
    return [module for name, module in model.named_modules() if _ATTENTION_OUT.search(name)]


def final_norm(model: nn.Module) -> nn.Module:
    """The norm applied after the last block of a decoder (``model.norm``, ``transformer.ln_f``, ...), or ``nn.Identity``
    for a model without one (BERT-style encoders normalise inside each block).

    Examples:
        >>> from shatterbox.models import load
        >>> type(final_norm(load().model)).__name__
        'Identity'
    """
    found = [module for name, module in model.named_modules() if _FINAL_NORM.search(name)]
    return found[0] if len(found) == 1 else nn.Identity()


def site_module(model: nn.Module, component: str, layer: int) -> tuple[nn.Module, bool]:
    """The module to hook for ``component`` at ``layer`` (``hidden``: 0..n; others: 1..n) and whether the hook reads
    the module's input (a pre-hook) rather than its output.

    Examples:
        >>> from shatterbox.models import load
        >>> m = load().model
        >>> site_module(m, "hidden", 0)[1], site_module(m, "head", 1)[1], site_module(m, "mlp", 6)[1]
        (True, True, False)
    """
    if component == "hidden":
        blocks = layer_modules(model)
        return (blocks[0], True) if layer == 0 else (blocks[layer - 1], False)
    if component in ("head", "attn"):
        return attention_out_modules(model)[layer - 1], component == "head"
    if component in ("mlp", "neuron"):
        return mlp_modules(model)[layer - 1], component == "neuron"
    raise ValueError(f"unknown component {component!r}")


def site_widths(model: nn.Module) -> dict[str, int]:
    """The width of each component's activation: hidden size, head size, attention output, MLP output, neurons.

    Examples:
        >>> from shatterbox.models import load
        >>> site_widths(load().model)
        {'hidden': 384, 'head': 32, 'attn': 384, 'mlp': 384, 'neuron': 1536}
    """
    attn, mlp = attention_out_modules(model)[0], mlp_modules(model)[0]
    n_heads = int(model.config.num_attention_heads)
    heads_in, attn_out = _features(attn)
    neurons, mlp_out = _features(mlp)
    hidden = int(model.config.hidden_size)
    return {"hidden": hidden, "head": heads_in // n_heads, "attn": attn_out, "mlp": mlp_out, "neuron": neurons}


def _features(module: nn.Module) -> tuple[int, int]:
    """(in, out) features of a linear layer or GPT-2's Conv1D (whose weight is stored [in, out])."""
    if isinstance(module, nn.Linear):
        return int(module.in_features), int(module.out_features)
    weight = module.weight
    return int(weight.shape[0]), int(weight.shape[1])


def supports_sites(model: nn.Module) -> str | None:
    """Why components cannot be reached in ``model`` (``None`` when every kind can).

    Examples:
        >>> from shatterbox.models import load
        >>> supports_sites(load().model) is None
        True
    """
    n = getattr(model.config, "num_hidden_layers", None)
    found = {"blocks": len(layer_modules(model)), "attention output projections": len(attention_out_modules(model)),
             "MLP down projections": len(mlp_modules(model))}
    missing = [what for what, count in found.items() if count != n]
    if missing:
        return f"{type(model).__name__}: found no {' or '.join(missing)} for its {n} layers"
    return None
