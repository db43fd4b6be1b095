"""The original simulator, in process: a local causal language model reads the explanation and each excerpt, and
its next-token probabilities over the numbers 0–10 after each token give the expected activation (all tokens of
an excerpt in one forward pass, as OpenAI's all-at-once simulator; no log-probability API needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shatterbox.errors import InputError
from shatterbox.neurons._scoring import LEVELS
from shatterbox.neurons._units import Excerpt

HEADER = ("A unit of a language model responds to a pattern in text. From the explanation of what it responds to, "
          "guess its activation on each token, from 0 (none) to 10 (strongest).\n\nExplanation: {explanation}\n\nToken\tActivation\n")
PLACEHOLDER = "?\n"


class LMSimulator:
    """Simulated activations read from a causal LM's digit probabilities: for token ``t`` of an excerpt the prompt
    holds ``t<TAB>`` and the model's next-token distribution, restricted to the numbers 0–10 that are single
    tokens of its vocabulary, gives the expected level (later tokens see a placeholder, not a guess).

    Examples:
        >>> import transformers as tf
        >>> from shatterbox.neurons import Excerpt
        >>> from shatterbox.models import default_model_path
        >>> tok = tf.AutoTokenizer.from_pretrained(default_model_path())
        >>> lm = tf.BertLMHeadModel(tf.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        ...                                         intermediate_size=37, is_decoder=True))
        >>> out = LMSimulator(lm, tok).simulate("the word bank", [Excerpt(0, ["a", "bank"], np.zeros(2))])
        >>> out[0].shape, bool(((out[0] >= 0) & (out[0] <= 10)).all())
        ((2,), True)
    """

    def __init__(self, model, tokenizer, *, name: str | None = None, batch_tokens: int = 4096) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.name = name or f"lm:{getattr(model.config, 'name_or_path', '') or type(model).__name__}"
        self.batch_tokens = int(batch_tokens)
        self.levels, self.ids = self._digits()

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "LMSimulator":
        """A simulator on the causal LM saved in the folder ``path`` (offline: nothing is downloaded)."""
        import transformers as tf

        if not Path(path).is_dir():
            raise InputError(f"--simulator-model {str(path)!r} is not a folder: give a local causal language model folder (save_pretrained)")
        try:
            tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = tf.AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot load a causal language model from {str(path)!r} ({str(exc).splitlines()[0][:160]})") from None
        return cls(model, tokenizer, name=f"lm:{Path(path).name}")

    def _digits(self) -> tuple[np.ndarray, torch.Tensor]:
        levels, ids = [], []
        for level in range(LEVELS + 1):
            pieces = self.tokenizer.encode(str(level), add_special_tokens=False)
            if len(pieces) == 1 and pieces[0] not in ids:
                levels.append(level)
                ids.append(pieces[0])
        if len(levels) < 2:
            raise InputError("this language model's vocabulary has no single-token numbers 0-10: choose another simulator model")
        return np.array(levels, dtype=np.float64), torch.tensor(ids)

    def _encode(self, explanation: str, excerpt: Excerpt) -> tuple[list[int], list[int]]:
        """Prompt ids and, per excerpt token, the index whose next-token logits give its level."""
        enc = lambda text: self.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
        ids = list(self.tokenizer.encode(HEADER.format(explanation=explanation), add_special_tokens=True))
        if ids and ids[-1] == self.tokenizer.sep_token_id:  # BERT-style tokenizers close the text: keep it open
            ids = ids[:-1]
        slots, placeholder = [], enc(PLACEHOLDER)
        for token in excerpt.tokens:
            ids += enc(token.removeprefix("##") + "\t")
            slots.append(len(ids) - 1)
            ids += placeholder
        return ids, slots

    @torch.inference_mode()
    def simulate(self, explanation: str, excerpts: Sequence[Excerpt]) -> list[np.ndarray]:
        """Expected levels (0–10), one array per excerpt; excerpts are batched by padded tokens."""
        encoded = [self._encode(explanation, e) for e in excerpts]
        out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        batch: list[int] = []
        for i in order + [None]:
            longest = max([len(encoded[j][0]) for j in batch] + ([len(encoded[i][0])] if i is not None else [0]))
            if batch and (i is None or longest * (len(batch) + 1) > self.batch_tokens):
                for j, levels in zip(batch, self._forward([encoded[j] for j in batch])):
                    out[j] = levels
                batch = []
            if i is not None:
                batch.append(i)
        return out

    def _forward(self, items: list[tuple[list[int], list[int]]]) -> list[np.ndarray]:
        width = max(len(ids) for ids, _ in items)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(items), width), pad, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (ids, _) in enumerate(items):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        logits = self.model(input_ids=input_ids, attention_mask=mask).logits  # [batch, width, vocab]
        out = []
        for row, (_, slots) in enumerate(items):
            digits = logits[row, slots][:, self.ids].double().softmax(-1).numpy()  # [tokens, levels]
            out.append(digits @ self.levels)
        return out
