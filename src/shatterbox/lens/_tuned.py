"""The tuned lens: one affine translator per layer, trained so that the translated layer read through the model's own
final norm and unembedding matches the final layer's next-token distribution (KL), on the residual states of an
activation store (no second pass of the model over the corpus), with held-out sentences scored layer by layer.

Each translator is ``h + h A^T + b`` with ``A`` and ``b`` starting at zero, so an untrained translator is the logit lens
and the last layer's (never trained) gives KL 0. Training is seeded and checkpointed: a killed fit resumes from its last
checkpoint with the same settings and ends with the same translators.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from shatterbox.errors import InputError
from shatterbox.lens._readout import Readout, kl_to_final, readout
from shatterbox.models import LoadedModel
from shatterbox.options import TUNED_LENS as LENS, TunedLensOptions

FORMAT = "shatterbox-tuned-lens"
FILE = "tuned-lens.safetensors"  # beside the store's shards
CHECKPOINT_SECONDS = 60.0
SCORE_BATCH = 128  # tokens per forward pass of the readout when scoring (logits of 128 x vocabulary floats)


Settings = TunedLensOptions  # what a tuned lens was trained with (a checkpoint resumes only with the same)


class TunedLens:
    """Affine translators, one per hidden layer, fitted on an activation store of a decoder.

    Fitted attributes: ``weight_`` and ``bias_`` (per layer: ``A`` [width, width] and ``b`` [width]; the translated
    state is ``h + h @ A.T + b``), ``layers_``, ``model_`` and ``model_hash_`` (the store's model), ``scores_`` (held-out
    KL and top-1 agreement per layer, tuned beside logit lens), ``history_`` (mean training KL per epoch),
    ``n_train_``/``n_held_`` (tokens).

    Examples:
        >>> from shatterbox.lens import TunedLens
        >>> lens = TunedLens(epochs=1, max_tokens=400)
        >>> lens.settings.epochs, hasattr(lens, "weight_")
        (1, False)
    """

    def __init__(self, *, epochs: int = LENS.epochs, learning_rate: float = LENS.learning_rate, batch_tokens: int = LENS.batch_tokens,
                 held_out: float = LENS.held_out, max_tokens: int = LENS.max_tokens, seed: int = LENS.seed) -> None:
        self.settings = Settings(epochs=epochs, learning_rate=learning_rate, batch_tokens=batch_tokens, held_out=held_out,
                                 max_tokens=max_tokens, seed=seed)
        _check_settings(self.settings)

    # --- fitting ---------------------------------------------------------------------------------
    def fit(self, store: Any, model: LoadedModel | None = None, *, checkpoint: str | Path | None = None,
            progress: Callable[[int, int], None] | None = None) -> "TunedLens":
        """Train on ``store`` (a store path or :class:`~shatterbox.store.Store` of a decoder holding every hidden layer,
        0..n): a seeded split of its sentences into training and held-out ones, at most ``max_tokens`` training tokens
        (special tokens left out), then scored on the held-out tokens. ``checkpoint``: a file the training state is
        saved to every minute and resumed from.

        Examples:
            >>> TunedLens().fit("no-such-store")
            Traceback (most recent call last):
            ...
            shatterbox.errors.StoreError: 'no-such-store' is not a shatterbox store (no manifest.json): make one with `shatterbox harvest CORPUS --out no-such-store`
        """
        from shatterbox.store import as_store, harvested_model

        store = as_store(store)
        model = harvested_model(store, model)
        head = readout(model)
        layers = list(range(model.n_layers + 1))
        store.require_hidden(layers)
        train, held = _token_split(store, self.settings)
        x_train = {h: store.token_vectors(f"hidden_{h}", *train) for h in layers}
        x_held = {h: store.token_vectors(f"hidden_{h}", *held) for h in layers}
        self.model_, self.model_hash_ = model.name, store.manifest["model"]["hash"]
        self.fit_arrays(x_train, head, checkpoint=checkpoint, progress=progress)
        self.scores_ = self.score_arrays(x_held, head)
        return self

    def fit_arrays(self, hidden: dict[int, np.ndarray], head: Readout, *, checkpoint: str | Path | None = None,
                   progress: Callable[[int, int], None] | None = None) -> "TunedLens":
        """Train on residual states ``hidden`` (layer -> [tokens, width], the same tokens in every layer; the highest layer
        is the final one, read by ``head`` as the model reads it).

        Examples:
            >>> head = Readout(torch.nn.Identity(), torch.nn.Linear(4, 6, bias=False))
            >>> x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
            >>> lens = TunedLens(epochs=1, batch_tokens=16).fit_arrays({0: x, 1: x}, head)
            >>> lens.layers_, float(lens.weight_[1].abs().sum())
            ([0, 1], 0.0)
        """
        layers = sorted(hidden)
        final = layers[-1]
        n, width = hidden[final].shape
        if n < 2:
            raise InputError("the tuned lens needs at least 2 training tokens: harvest more sentences", parameter="store")
        x = {h: torch.from_numpy(np.array(hidden[h], dtype=np.float32)) for h in layers}  # a writable copy
        # each input and output dimension standardised: Gemma-like residual streams hold a few dimensions thousands of
        # times larger than the rest, and one scale for all would leave the small ones untrainable
        mean = {h: x[h].mean(dim=0) for h in layers}
        std = {h: x[h].std(dim=0).clamp(min=1e-6) for h in layers}
        trained = layers[:-1]
        a = {h: torch.zeros(width, width, requires_grad=True) for h in trained}
        b = {h: torch.zeros(width, requires_grad=True) for h in trained}
        params = [p for h in trained for p in (a[h], b[h])]
        optimiser = torch.optim.Adam(params, lr=self.settings.learning_rate)
        s = self.settings
        steps_per_epoch = -(-n // s.batch_tokens)
        total = s.epochs * steps_per_epoch
        step, history = _resume(checkpoint, s, trained, a, b, optimiser)
        last_save = time.monotonic()
        epoch_kl: list[float] = []
        order_epoch, order = -1, np.arange(0)
        for step in range(step, total):
            epoch, inside = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # each epoch's seeded order, drawn once
                order_epoch, order = epoch, np.random.default_rng([s.seed, epoch]).permutation(n)
            rows = torch.from_numpy(order[inside * s.batch_tokens:(inside + 1) * s.batch_tokens])
            with torch.no_grad():
                target = torch.log_softmax(head.logits(x[final][rows]), dim=-1)
                p = target.exp()
                p_half = p.to(torch.bfloat16)
                entropy = float(-(p * target).sum(dim=-1).mean())  # KL = cross-entropy - entropy: the same gradient
            optimiser.zero_grad(set_to_none=True)
            total_kl = 0.0
            for h in trained:
                state = x[h][rows]
                moved = state + ((state - mean[h]) / std[h] @ a[h].T + b[h]) * std[h]
                loss = torch.nn.functional.cross_entropy(head.logits(moved, fast=True), p_half)  # bfloat16: a third faster
                loss.backward()
                total_kl += float(loss.detach().float()) - entropy
            optimiser.step()
            epoch_kl.append(total_kl / max(len(trained), 1))
            if inside == steps_per_epoch - 1:
                history.append(float(np.mean(epoch_kl)))
                epoch_kl = []
            if checkpoint is not None and time.monotonic() - last_save > CHECKPOINT_SECONDS:
                _save_checkpoint(checkpoint, s, step + 1, history, trained, a, b, optimiser)
                last_save = time.monotonic()
            if progress is not None:
                progress(step + 1, total)
        self.layers_ = layers
        self.weight_, self.bias_ = {}, {}
        for h in layers:  # written as h + h @ W.T + bias (what translate() and the file hold)
            if h not in a:
                self.weight_[h], self.bias_[h] = torch.zeros(width, width), torch.zeros(width)
                continue
            w = std[h][:, None] * a[h].detach() / std[h][None, :]
            self.weight_[h], self.bias_[h] = w.clone(), (std[h] * b[h].detach() - w @ mean[h]).clone()
        self.history_ = history
        self.n_train_ = n
        if checkpoint is not None and Path(checkpoint).exists():
            Path(checkpoint).unlink()
        return self

    # --- using ----------------------------------------------------------------------------------
    def translate(self, state: torch.Tensor, layer: int) -> torch.Tensor:
        """The translated residual state [..., width] of hidden layer ``layer``.

        Examples:
            >>> head = Readout(torch.nn.Identity(), torch.nn.Linear(2, 3, bias=False))
            >>> lens = TunedLens(epochs=1).fit_arrays({0: np.ones((4, 2), np.float32), 1: np.ones((4, 2), np.float32)}, head)
            >>> lens.translate(torch.ones(2), 1).tolist()
            [1.0, 1.0]
        """
        self._fitted()
        if layer not in self.weight_:
            raise InputError(f"this tuned lens has translators for hidden layers {self.layers_[0]}-{self.layers_[-1]}, not {layer}", parameter="layer")
        w, b = self.weight_[layer], self.bias_[layer]
        return state + state @ w.to(state.dtype).T + b.to(state.dtype)

    def score_arrays(self, hidden: dict[int, np.ndarray], head: Readout) -> list[dict]:
        """Per layer, on held-out residual states: mean KL to the final layer of the logit lens and of the tuned lens,
        their ratio, and each lens's top-1 agreement with the final layer.

        Examples:
            >>> head = Readout(torch.nn.Identity(), torch.nn.Linear(2, 3, bias=False))
            >>> x = np.ones((4, 2), np.float32)
            >>> TunedLens(epochs=1).fit_arrays({0: x, 1: x}, head).score_arrays({0: x, 1: x}, head)[1]["tuned_kl"]
            0.0
        """
        self._fitted()
        layers = sorted(hidden)
        final = layers[-1]
        n = len(hidden[final])
        sums = {h: np.zeros(4) for h in layers}
        with torch.inference_mode():
            for start in range(0, n, SCORE_BATCH):
                target = torch.log_softmax(head.logits(torch.from_numpy(hidden[final][start:start + SCORE_BATCH])), dim=-1)
                best = target.argmax(dim=-1)
                for h in layers:
                    state = torch.from_numpy(hidden[h][start:start + SCORE_BATCH])
                    for i, moved in enumerate((state, self.translate(state, h))):
                        logp = torch.log_softmax(head.logits(moved), dim=-1)
                        sums[h][i] += float(kl_to_final(target, logp).sum())
                        sums[h][2 + i] += float((logp.argmax(dim=-1) == best).sum())
        rows = []
        for h in layers:
            logit_kl, tuned_kl, logit_top, tuned_top = sums[h] / max(n, 1)
            rows.append({"layer": h, "logit_kl": round(float(logit_kl), 6), "tuned_kl": round(float(tuned_kl), 6),
                         "ratio": round(float(logit_kl / tuned_kl), 4) if tuned_kl > 1e-9 else None,
                         "logit_top1": round(float(logit_top), 6), "tuned_top1": round(float(tuned_top), 6), "tokens": n})
        self.n_held_ = n
        return rows

    def check_model(self, model: LoadedModel) -> None:
        """Refuse ``model`` unless it is the one the lens was trained for (same weights hash).

        Examples:
            >>> lens = TunedLens(); lens.model_hash_, lens.model_ = "x", "gemma-3-270m"
            >>> from shatterbox.models import load
            >>> lens.check_model(load())
            Traceback (most recent call last):
            ...
            shatterbox.errors.InputError: this tuned lens was trained for 'gemma-3-270m', not for 'default': train one on a store of that model (shatterbox lens fit STORE)
        """
        from shatterbox.store import model_hash

        self._fitted(("model_hash_",))
        if model_hash(model) != self.model_hash_:
            raise InputError(f"this tuned lens was trained for {self.model_!r}, not for {model.name!r}: train one on a store of that model "
                             "(shatterbox lens fit STORE)", parameter="tuned")

    # --- files ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the translators, settings and held-out scores to one safetensors file (atomically).

        Examples:
            >>> import tempfile
            >>> head = Readout(torch.nn.Identity(), torch.nn.Linear(2, 3, bias=False))
            >>> x = np.ones((4, 2), np.float32)
            >>> lens = TunedLens(epochs=1).fit_arrays({0: x, 1: x}, head)
            >>> TunedLens.load(lens.save(tempfile.mkdtemp() + "/lens.safetensors")).layers_
            [0, 1]
        """
        self._fitted()
        path = Path(path)
        tensors = {f"layers.{h}.weight": self.weight_[h].contiguous() for h in self.layers_}
        tensors |= {f"layers.{h}.bias": self.bias_[h].contiguous() for h in self.layers_}
        meta = {"format": FORMAT, "version": "1", "model": getattr(self, "model_", ""), "model_hash": getattr(self, "model_hash_", ""),
                "settings": json.dumps(asdict(self.settings)), "scores": json.dumps(getattr(self, "scores_", None)),
                "history": json.dumps(self.history_), "n_train": str(self.n_train_), "layers": json.dumps(self.layers_)}
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "TunedLens":
        """Read a lens written by :meth:`save` (a file that is not one: one message).

        Examples:
            >>> TunedLens.load("missing.safetensors")
            Traceback (most recent call last):
            ...
            shatterbox.errors.InputError: no tuned lens at 'missing.safetensors': train one with shatterbox lens fit STORE
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no tuned lens at {str(path)!r}: train one with shatterbox lens fit STORE", parameter="tuned")
        try:
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{str(path)!r} is not a safetensors file ({exc}): give a tuned lens written by shatterbox lens fit", parameter="tuned") from None
        if meta.get("format") != FORMAT:
            raise InputError(f"{str(path)!r} is not a shatterbox tuned lens (format {meta.get('format')!r}): give a file written by shatterbox lens fit",
                             parameter="tuned")
        lens = cls(**json.loads(meta["settings"]))
        lens.layers_ = [int(h) for h in json.loads(meta["layers"])]
        lens.weight_ = {h: tensors[f"layers.{h}.weight"] for h in lens.layers_}
        lens.bias_ = {h: tensors[f"layers.{h}.bias"] for h in lens.layers_}
        lens.model_, lens.model_hash_ = meta.get("model", ""), meta.get("model_hash", "")
        lens.scores_ = json.loads(meta.get("scores") or "null")
        lens.history_ = json.loads(meta.get("history") or "[]")
        lens.n_train_ = int(meta.get("n_train", 0))
        return lens

    def _fitted(self, names: Sequence[str] = ("weight_",)) -> None:
        if not all(hasattr(self, n) for n in names):
            raise InputError("this tuned lens is not fitted yet: call fit(store) or TunedLens.load(path) first", parameter="tuned")


def _check_settings(s: Settings) -> None:
    from shatterbox.options import TunedLensOptions, spec

    for name, value in asdict(s).items():
        rule = spec(TunedLensOptions, name)
        if not isinstance(value, (int, float)) or not np.isfinite(value) or (rule.ge is not None and value < rule.ge) or (rule.le is not None and value > rule.le):
            raise InputError(f"{name}={value!r} is out of range: give {rule.ge:g} to {rule.le:g}" if rule.le is not None else
                             f"{name}={value!r} is out of range: give at least {rule.ge:g}", parameter=name)


def _token_split(store, s: Settings) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(sentence ids, positions) of the training and held-out tokens: a seeded split of the sentences, special tokens left
    out, each side capped by a seeded sample (training ``max_tokens``; held out in proportion)."""
    meta = store.rows("not special", columns=["sentence_id", "position"])
    sid, pos = meta.column("sentence_id").to_numpy(), meta.column("position").to_numpy()
    sentences = np.unique(sid)
    if len(sentences) < 2:
        raise InputError("the tuned lens needs a store of at least 2 sentences (training and held out): harvest more", parameter="store")
    rng = np.random.default_rng(s.seed)
    n_held = min(len(sentences) - 1, max(1, round(s.held_out * len(sentences))))
    held_ids = rng.choice(sentences, n_held, replace=False)
    is_held = np.isin(sid, held_ids)
    caps = (s.max_tokens, max(1, round(s.max_tokens * s.held_out / (1 - s.held_out))))
    out = []
    for mask, cap in ((~is_held, caps[0]), (is_held, caps[1])):
        where = np.flatnonzero(mask)
        if len(where) > cap:
            where = np.sort(rng.choice(where, cap, replace=False))
        out.append((sid[where], pos[where]))
    return out[0], out[1]


def _resume(checkpoint, s: Settings, trained: list[int], a: dict, b: dict, optimiser: torch.optim.Optimizer) -> tuple[int, list[float]]:
    """The step to start from and the epoch history so far (a checkpoint with other settings is ignored)."""
    if checkpoint is None or not Path(checkpoint).is_file():
        return 0, []
    try:
        from safetensors import safe_open

        with safe_open(str(checkpoint), "pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(checkpoint))
    except (SafetensorError, OSError, ValueError):
        return 0, []
    if meta.get("settings") != json.dumps(asdict(s)) or meta.get("layers") != json.dumps(trained):
        return 0, []
    with torch.no_grad():
        for h in trained:
            a[h].copy_(tensors[f"a.{h}"])
            b[h].copy_(tensors[f"b.{h}"])
    state = optimiser.state_dict()
    for i, p in enumerate(optimiser.param_groups[0]["params"]):
        state["state"][i] = {"step": tensors[f"adam.{i}.step"], "exp_avg": tensors[f"adam.{i}.exp_avg"], "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"]}
    optimiser.load_state_dict(state)
    return int(meta["step"]), json.loads(meta["history"])


def _save_checkpoint(checkpoint, s: Settings, step: int, history: list[float], trained: list[int], a: dict, b: dict,
                     optimiser: torch.optim.Optimizer) -> None:
    """The translators and the optimiser's state after ``step`` steps, written atomically."""
    tensors = {f"a.{h}": a[h].detach().clone() for h in trained} | {f"b.{h}": b[h].detach().clone() for h in trained}
    for i, p in enumerate(optimiser.param_groups[0]["params"]):
        st = optimiser.state[p]
        tensors |= {f"adam.{i}.step": st["step"].detach().clone().reshape(()), f"adam.{i}.exp_avg": st["exp_avg"].clone(),
                    f"adam.{i}.exp_avg_sq": st["exp_avg_sq"].clone()}
    path = Path(checkpoint)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"settings": json.dumps(asdict(s)), "layers": json.dumps(trained), "step": str(step),
                                            "history": json.dumps(history)})
    os.replace(tmp, path)
