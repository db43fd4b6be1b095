"""Generation as a game: which prompt words (and earlier generated tokens) each generated token needed.

The players are the prompt's words and the generated tokens but the last; the game has one output
per generated token, its log-probability given the present players (teacher forcing on the
continuation), or with a contrast, log p(token) - log p(contrast token). Absent players' tokens
are deleted (a decoder has no mask token it was trained with), as :class:`~shatterbox.attribution.TokenGame`
deletes them; the beginning-of-sequence token always stays. One forward pass answers every generated
token of a coalition, and the language-model head runs only at the positions that predict them.

Examples:
    >>> from shatterbox.generation._game import sequence_ids
    >>> sequence_ids([2, 10, 11], [12, 13]).tolist()  # prompt with BOS, then every generated token but the last
    [2, 10, 11, 12]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from shatterbox.attribution import Game
from shatterbox.trace import align, encode
from shatterbox.errors import InputError
from shatterbox.models import language_model_parts

LOGITS_BYTES = 256 << 20  # vocabulary logits held at once (a 262k-word vocabulary is 1 MB per predicted token)
BATCH_TOKENS = 8192


def sequence_ids(prompt_ids: Sequence[int], new_ids: Sequence[int]) -> torch.Tensor:
    """The input the model reads for teacher forcing: the prompt, then each generated token but the last."""
    return torch.tensor(list(prompt_ids) + list(new_ids)[:-1], dtype=torch.long)


@dataclass
class Prompt:
    """A prompt tokenised for a decoder: ids (with a start token), the token -> word map, the words."""

    text: str
    ids: list[int]
    token_word: np.ndarray  # [tokens], -1 for special tokens
    words: list[str]


def tokenize_prompt(model, prompt: str) -> Prompt:
    """Tokenise ``prompt`` with the model's own special tokens; a start token is added where the tokenizer adds
    none (GPT-2), so that every coalition, even the empty one, has a context to predict from.

    Examples:
        >>> from shatterbox import load
        >>> p = tokenize_prompt(load("gemma-3-270m"), "The capital of France")  # doctest: +SKIP
        >>> p.words  # doctest: +SKIP
        ['The', 'capital', 'of', 'France']
    """
    if not prompt or not prompt.strip():
        raise InputError("the prompt is empty: give some text to continue")
    encoded = encode(model, [prompt], truncate=False)
    length = int(encoded.lengths[0])
    al = align(model.tokenizer, encoded.batch, 0, length, (prompt, None))
    ids = encoded.batch["input_ids"][0, :length].tolist()
    special = al.special.copy()
    if not special[0]:
        start = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else model.tokenizer.eos_token_id
        if start is None:
            raise InputError(f"model {model.name!r} has no start or end-of-text token to begin a generation from")
        ids, special = [int(start)] + ids, np.concatenate([[True], special])
        word_index = np.concatenate([[-1], al.word_index])
    else:
        word_index = al.word_index
    keep = ~al.word_special
    renumber = np.cumsum(keep) - 1
    token_word = np.where(special, -1, renumber[np.maximum(word_index, 0)])
    return Prompt(text=prompt, ids=ids, token_word=token_word.astype(np.int64), words=[w for w, k in zip(al.words, keep) if k])


def target_logprobs(model, hidden: torch.Tensor, targets: torch.Tensor, contrast: torch.Tensor | None = None) -> torch.Tensor:
    """log p(target) [..., T] (minus log p(contrast) where given) from hidden states [..., T, D] at the predicting
    positions; the vocabulary is scored in slices of at most ``LOGITS_BYTES``."""
    _, head, cap = language_model_parts(model)
    flat = hidden.reshape(-1, hidden.shape[-1])
    want = targets.expand(hidden.shape[:-1]).reshape(-1)  # the T token ids repeated for every coalition's row
    other = None if contrast is None else contrast.expand(hidden.shape[:-1]).reshape(-1)
    rows = max(1, LOGITS_BYTES // (4 * head.weight.shape[0]))
    out = []
    for a in range(0, len(flat), rows):
        logits = head(flat[a:a + rows]).float()
        if cap:
            logits = cap * torch.tanh(logits / cap)
        logp = torch.log_softmax(logits, dim=-1)
        value = logp.gather(1, want[a:a + rows, None])[:, 0]
        if other is not None:
            value = value - logp.gather(1, other[a:a + rows, None])[:, 0]
        out.append(value)
    return torch.cat(out).reshape(hidden.shape[:-1])


class GenerationGame(Game):
    """Coalitions of prompt words and generated tokens -> log-probabilities [k, generated tokens].

    Examples:
        >>> from shatterbox import load
        >>> g = GenerationGame(load("gemma-3-270m"), "The capital of France is", [9079])  # doctest: +SKIP
        >>> g.words, g.labels  # doctest: +SKIP
        (['The', 'capital', 'of', 'France', 'is'], ['▁Paris'])
    """

    masking = "delete"

    def __init__(self, model, prompt: str | Prompt, new_ids: Sequence[int], *, contrast_ids: Sequence[int] | None = None,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.body, self.head, _ = language_model_parts(model)
        self.model, self.dtype = model, dtype
        self.prompt = prompt if isinstance(prompt, Prompt) else tokenize_prompt(model, prompt)
        self.text = self.prompt.text
        self.new_ids = [int(i) for i in new_ids]
        if not self.new_ids:
            raise InputError("nothing was generated to explain: raise max_new_tokens or give a continuation", parameter="max_new_tokens")
        if contrast_ids is not None and len(contrast_ids) != len(self.new_ids):
            raise InputError(
                f"the contrast has {len(contrast_ids)} tokens and the continuation {len(self.new_ids)}: give a contrast "
                "of as many tokens (one alternative per generated token)"
            )
        tokens = model.tokenizer.convert_ids_to_tokens(self.new_ids)
        self.labels = list(tokens)
        n_prompt = int(self.prompt.token_word.max()) + 1 if (self.prompt.token_word >= 0).any() else 0
        self.n_prompt_words = n_prompt
        self.words = list(self.prompt.words) + [f"{t} (generated {i + 1})" for i, t in enumerate(tokens[:-1])]
        self.input_ids = sequence_ids(self.prompt.ids, self.new_ids)
        gen_players = np.arange(len(self.new_ids) - 1) + n_prompt
        self.token_word = np.concatenate([self.prompt.token_word, gen_players]).astype(np.int64)
        self.targets = torch.tensor(self.new_ids, dtype=torch.long)
        self.contrast = None if contrast_ids is None else torch.tensor([int(i) for i in contrast_ids], dtype=torch.long)
        self.predicting = np.arange(len(self.new_ids)) + len(self.prompt.ids) - 1  # the position that predicts token t
        self.batch_size = max(1, min(BATCH_TOKENS // len(self.input_ids), LOGITS_BYTES // (4 * self.head.weight.shape[0] * len(self.new_ids))))
        if self.n == 0:
            raise InputError("the prompt has no words to attribute to")

    def token_presence(self, masks: np.ndarray) -> np.ndarray:
        """Which input tokens are present [k, tokens] for player coalitions [k, n] (the start token always is)."""
        present = np.ones((len(masks), len(self.token_word)), dtype=bool)
        cols = np.flatnonzero(self.token_word >= 0)
        present[:, cols] = masks[:, self.token_word[cols]]
        return present

    def masked_inputs(self, masks: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs with absent tokens deleted (kept tokens first, right-padded) and, per coalition, the index in
        them of the last present token before each generated token: where that token is predicted."""
        present = torch.from_numpy(self.token_presence(masks))
        order = torch.argsort((~present).to(torch.int8), dim=1, stable=True)
        kept = torch.gather(present, 1, order)
        width = int(kept.sum(dim=1).max())
        ids = torch.gather(self.input_ids.expand(len(masks), -1), 1, order)[:, :width]
        pad = self.model.tokenizer.pad_token_id or 0
        ids = ids.masked_fill(~kept[:, :width], pad)
        where = torch.cumsum(present.to(torch.long), dim=1)[:, torch.from_numpy(self.predicting)] - 1
        return {"input_ids": ids, "attention_mask": kept[:, :width].to(torch.long)}, where

    def logprobs_at(self, hidden: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """Target log-probabilities [k, T] from the body's hidden states [k, width, D] at ``where`` [k, T]."""
        picked = torch.gather(hidden, 1, where[:, :, None].expand(-1, -1, hidden.shape[-1]))
        return target_logprobs(self.model, picked, self.targets, self.contrast)

    def _values(self, masks: np.ndarray) -> np.ndarray:
        inputs, where = self.masked_inputs(masks)
        fast = self.dtype == "bfloat16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            hidden = self.body(**inputs).last_hidden_state
            return self.logprobs_at(hidden, where).double().numpy()

    def sources_of(self, target: int) -> np.ndarray:
        """Which players can matter to generated token ``target`` (0-based): the prompt's words and the tokens
        generated before it (later ones are never read, so their values are exactly zero).

        Examples:
            >>> g = object.__new__(GenerationGame); g.n_prompt_words, g.words = 2, ["a", "b", "x", "y"]
            >>> g.sources_of(1).tolist()
            [True, True, True, False]
        """
        return np.arange(self.n) < self.n_prompt_words + target
