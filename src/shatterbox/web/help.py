"""How to read each tab: the text the page shows under "How to read this" (served at ``/api/help``); the manual's
web page (docs/web.md) carries the same sentences, checked by a test.

Examples:
    >>> sorted(HELP)[:3]
    ['attention', 'corpus', 'explain']
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["HELP", "router"]

HELP = {
    "attention": (
        "Each line joins a token (left) to a token it attends to (right); the darker the line, the larger the attention weight, "
        "and each row of weights sums to 1. Layers and heads are numbered from 1. The table shows one head: row = the token "
        "attending, column = the token attended to."
    ),
    "heads": (
        "The heat map shows each head's ranking score (layer rows, head columns): (1 - entropy) x (1 - share on special tokens "
        "and punctuation) x agreement across the sentences, so focused, consistent heads that do not park on [CLS], [SEP] or "
        "punctuation score high; darker = higher. Kinds: delimiter (no-op: 60 % or more on special tokens and punctuation), "
        "previous-token, next-token or self (half the attention or more on that position), broad (near-uniform) and content "
        "(the rest). The why column gives the numbers behind the kind; delimiter heads are ranked last."
    ),
    "explain": (
        "Each word is coloured by how much it moved the chosen label's probability: red pushed it up, blue down, the scale is "
        "the legend's. Comprehensiveness: how much the probability drops when the top words are deleted (higher = more "
        "faithful); sufficiency: how much it drops when only they are kept (lower = better); AOPC: the same averaged over "
        "1, 2, ... words."
    ),
    "generate": (
        "Rows are generated tokens, columns the prompt's words and earlier generated tokens (italic). A cell is how much that "
        "source raised (red) or lowered (blue) the token's log-probability, in nats, on the legend's scale; empty grey cells come "
        "after the token. The log p column is the token's log-probability, or with a contrast the difference "
        "log p(token) - log p(alternative)."
    ),
    "patching": (
        "Each cell is one patched run: the component (a layer's hidden state at a position, a head, an attention or MLP output) "
        "is copied from the clean run into the corrupted one (denoise), or from the corrupted run into the clean one (noise). "
        "The number is the effect in %: 100 = the component alone carries all of the clean behaviour (restores it, or destroys "
        "it when noising), 0 = none. Attribution patching estimates every cell from one forward and backward pass; the "
        "Spearman rank agreement says how far it can stand in for the exact map. Click a cell for its patched prediction."
    ),
    "lens": (
        "Rows are the decoder's hidden states (0 = embeddings, last = the last block's output), columns the text's positions. "
        "Each cell is the token that layer would predict next if the model stopped there, read through the model's own final "
        "norm and unembedding (logit lens) or through a translator trained per layer (tuned lens). Colour: the probability the "
        "layer gives the model's final prediction (red = 1); bold: it is already on top. Mean KL is how far the layer's whole "
        "distribution is from the final one (nats). The classifier lens applies the served classifier's head to every layer."
    ),
    "sae": (
        "Core scores, per layer, on held-out tokens: variance explained (beside PCA with as many components as the mean "
        "L0), mean L0 (latents active per token), dead latents (never active) and dense ones (active on more than a tenth "
        "of tokens), and the loss recovered when the layer is replaced by its reconstruction: 1 = nothing lost, 0 = as bad "
        "as zeroing the layer (a decoder's LM loss; an encoder's sentence embedding). Sparse probing: how well k latents "
        "read a property, against k random latents, a dense probe and the majority class. Absorption: how much of the "
        "first-letter direction token-specific latents carry when the letter's own latents stay silent (lower is better). "
        "A row that does not beat its control is highlighted and says why."
    ),
    "steering": (
        "Each strength adds that multiple of the layer's median residual norm, along the direction, at every position while the "
        "decoder generates. Concept: the shipped sentiment classifier's probability of the target for the continuation (or the "
        "log-probability of the concept words). Fluency: how likely the unsteered model finds the continuation, in nats per "
        "token (closer to 0 = more fluent). The random direction has the same length; a direction that moves the concept no "
        "more than it is flagged. Prompting asks the same model in words."
    ),
    "corpus": (
        "The activation stores of the served folder: model, corpus, tokens, columns and size. Choose one: the Factors, Projector, "
        "Probes and Neurons tabs read it. A search lists where a word occurs, a page at a time."
    ),
    "factors": (
        "Variance explained: the share of the hidden states' variance the factors reconstruct on held-out tokens; PCA, as many "
        "components is the same for PCA with as many components as the factors' mean L0 (the mean number of factors active per "
        "token), the control a fit must beat. Dead %: factors that never fire on held-out tokens. Low, mid and high: where a "
        "factor's importance curve has its centre of mass (the first, middle or last third of the fitted layers). The curves "
        "show importance by layer, all on one scale."
    ),
    "projector": (
        "Each point is a sentence (or token) of the store; nearby points have similar hidden states at that layer. "
        "Trustworthiness and k-NN recall (1 = perfect) say how faithfully the 2-D map keeps each point's neighbours."
    ),
    "probes": (
        "A probe is a classifier trained on one layer's hidden states to read a property. Accuracy is on held-out folds; the "
        "control task gives each word type a random label, so a probe that memorises words scores well on it too. Selectivity = "
        "accuracy - control accuracy: what the layer encodes beyond word identity. \"Control labels agree with the task\" is "
        "how often a random label happens to equal the true one. Compare with the most frequent class: a probe at that accuracy "
        "has learned nothing."
    ),
    "neurons": (
        "Excerpts are shaded by the unit's activation (0-10 of its largest). The explanation is written from half of the top "
        "excerpts and scored on the other half and on random excerpts: correlation of the simulated with the true activations, "
        "detection and fuzzing (balanced accuracy of telling firing excerpts apart). A unit is flagged when the explanation does "
        "not beat the random, shuffled and token-lookup baselines."
    ),
}


def router(_served=None) -> APIRouter:
    """``/api/help``: :data:`HELP` as JSON."""
    api = APIRouter()

    @api.get("/api/help", summary="How to read each tab (the page's \"How to read this\"; the same text as the manual)")
    async def how_to_read() -> dict:
        return HELP

    return api
