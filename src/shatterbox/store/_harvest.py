"""Harvest: run the model over a corpus in length-sorted batches and write one Parquet shard at a time."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from shatterbox.trace import TruncationWarning, align, allowed_keys, encode, layer_window, mlp_modules, recording
from shatterbox.trace.stats import ROW_STATS, is_punct, row_stats
from shatterbox.corpus import Corpus, load_corpus
from shatterbox.engines import Engine, as_engine, load_source, model_source
from shatterbox.errors import InputError, StoreError, StoreMismatch
from shatterbox.memory import bounded_heap, writer_pool
from shatterbox.store import _layout as lay

if TYPE_CHECKING:
    from shatterbox.models import LoadedModel
    from shatterbox.store._store import Store

BATCH_TOKENS = 2048  # padded tokens per forward pass (larger batches run slower on CPU: cache)
ATTENTION_BYTES = 256 << 20  # attention probabilities of one forward pass, all layers
SHARD_BYTES = 64 << 20  # activation bytes one shard holds in memory before it is written
PLAN_CHUNK = 4096  # sentences tokenized at a time when the shards are planned
ROW_GROUP_BYTES = 16 << 20

Progress = Callable[[int, int, int], None]  # (sentences done, tokens done, sentences in all)


@dataclass(frozen=True)
class Column:
    """One activation column of the store: ``hidden_3``, ``mlp_3`` or ``attn_entropy_3``."""

    name: str
    kind: str  # hidden | mlp | attention
    layer: int  # hidden: 0 = embeddings, l = output of layer l; mlp/attention: layer l (from 1)
    width: int
    dtype: str
    stat: str | None = None

    def to_dict(self) -> dict:
        """JSON-ready description (for the manifest)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_what(what: str | Sequence[str]) -> tuple[str, ...]:
    """``"hidden,mlp,attention-stats"`` -> ("hidden", "mlp", "attention"), checked.

    Examples:
        >>> parse_what("hidden, attention-stats")
        ('hidden', 'attention')
    """
    items = what.split(",") if isinstance(what, str) else list(what)
    names = []
    for item in items:
        name = item.strip().lower().removesuffix("-stats").removesuffix("_stats")
        if name in ("hidden-states", "hidden_states"):
            name = "hidden"
        if name not in lay.WHAT:
            raise InputError(f"cannot harvest {item.strip()!r}: choose from hidden, mlp, attention-stats (comma-separated)")
        if name not in names:
            names.append(name)
    if not names:
        raise InputError("nothing to harvest: give what=hidden, mlp and/or attention-stats", parameter="what")
    return tuple(n for n in lay.WHAT if n in names)


def parse_ranges(spec: str, error: str) -> list[int]:
    """The numbers of ``"2-4,6"`` (ranges inclusive, in order given, repeats kept), or ``InputError(error)``.

    Examples:
        >>> parse_ranges("2-4,6", "bad")
        [2, 3, 4, 6]
    """
    numbers: list[int] = []
    for part in str(spec).split(","):
        bounds = part.strip().split("-")
        try:
            lo, hi = int(bounds[0]), int(bounds[-1])
        except ValueError:
            raise InputError(error) from None
        numbers += range(lo, hi + 1)
    return numbers


def parse_layers(spec: str | Sequence[int] | None, n_layers: int) -> list[int]:
    """Layer numbers from ``"all"``, ``"0-6"``, ``"1,3,6"`` or a list; 0 is the embeddings.

    Examples:
        >>> parse_layers("all", 6), parse_layers("2-4,6", 6)
        ([0, 1, 2, 3, 4, 5, 6], [2, 3, 4, 6])
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return list(range(n_layers + 1))
    if isinstance(spec, str):
        layers = parse_ranges(spec, f"cannot read the layers {spec!r}: write e.g. all, 0-{n_layers} or 1,3,{n_layers}")
    else:
        layers = [int(x) for x in spec]
    bad = [x for x in layers if not 0 <= x <= n_layers]
    if bad or not layers:
        raise InputError(f"layer {bad[0] if bad else '(none)'} is out of range: this model has layers 1-{n_layers} (0 = the embeddings)")
    return sorted(set(layers))


LONG_CONTEXT = 4096  # models that accept more tokens than this have their texts cut at batch_tokens when harvested


def harvest(
    corpus: Corpus | str,
    out: str | Path,
    *,
    model: "LoadedModel | str" = "default",
    layers: str | Sequence[int] | None = "all",
    what: str | Sequence[str] = ("hidden",),
    dtype: str = "float32",
    batch_tokens: int = BATCH_TOKENS,
    shard_bytes: int = SHARD_BYTES,
    repair: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    engine: "Engine | str" = "local",
):
    """Run ``model`` over ``corpus`` and write per-token activations to the store ``out``; returns the Store.

    Resumable: run the same call again after an interruption (even SIGKILL) and only the missing
    shards are computed; a store of another model, corpus or settings is refused (``overwrite=True``
    replaces it). ``repair=True`` re-reads every shard with checksums and redoes damaged ones.
    Memory is bounded by ``batch_tokens`` per forward pass and ``shard_bytes`` per shard, whatever
    the corpus size. ``engine`` (an :class:`~shatterbox.engines.Engine`, or "ray") computes the shards on Ray replicas of the
    model (``Engine("ray", workers=N, address=...)``: one per CPU by default; a cluster's workers must see ``out``)
    and gives the same store.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> s = harvest(Corpus.from_texts(["The bank raised rates.", "We sat on the river bank."]),
        ...             tempfile.mkdtemp(), layers="6", what="hidden,mlp")
        >>> s.columns, s.n_tokens
        (['hidden_6', 'mlp_6'], 16)
    """
    from shatterbox.models import LoadedModel, load
    from shatterbox.store._store import Store

    engine = as_engine(engine)
    loaded = model if isinstance(model, LoadedModel) else load(model)
    corpus = corpus if isinstance(corpus, Corpus) else load_corpus(corpus)
    if dtype not in lay.DTYPES:
        raise InputError(f"unknown dtype {dtype!r}: use float32 or float16 (half the size, relative error <= 4.9e-4)")
    if batch_tokens < loaded.max_length:
        if loaded.max_length <= LONG_CONTEXT:
            raise InputError(f"batch_tokens must be at least the model's {loaded.max_length} tokens (got {batch_tokens})")
        # a long-context decoder (Gemma: 32,768): a text is cut at one batch, so memory stays bounded by batch_tokens
        loaded = dataclasses.replace(loaded, max_length=batch_tokens)
    kinds = parse_what(what)
    chosen = parse_layers(layers, loaded.n_layers)
    columns = _columns(loaded, kinds, chosen, dtype)
    root = Path(out)
    content = {
        "format": lay.FORMAT,
        "model": {"name": loaded.name, "class": type(loaded.model).__name__, "hash": model_hash(loaded), "revision": _revision(loaded)},
        "corpus": {"name": corpus.name, "hash": corpus.fingerprint(), "sentences": len(corpus)},
        "columns": [c.to_dict() for c in columns],
        "dtype": dtype,
        "max_length": loaded.max_length,
    }
    manifest = _prepare(root, content, overwrite, lambda: _plan(loaded, corpus, columns, shard_bytes))
    with bounded_heap():  # freed activation buffers go back to the OS: memory stays flat over the corpus
        _run(root, manifest, loaded, corpus, columns, batch_tokens, repair, progress, engine)
    return Store.open(root)


def harvested_model(store: "Store", model: "LoadedModel | None" = None) -> "LoadedModel":
    """The model ``store`` was harvested with: ``model`` checked against the manifest's weights hash, or loaded by the
    manifest's name (a random-weights control is drawn again from its base model and seed).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> harvested_model(harvest(Corpus.from_texts(["Hi there."]), tempfile.mkdtemp(), layers="1")).name
        'default'
    """
    from shatterbox.models import load, random_weights

    name = store.manifest["model"]["name"]
    if model is None:
        drawn = re.fullmatch(r"(.+) \(random weights, seed (\d+)\)", name)
        model = random_weights(load(drawn[1]), int(drawn[2])) if drawn else load(name)  # the same seed draws the same weights
    if model_hash(model) != store.manifest["model"]["hash"]:
        raise InputError(f"the store was harvested with {name!r}, not with {model.name!r}: give that model", parameter="model")
    return model


def model_hash(loaded: "LoadedModel") -> str:
    """SHA-256 of the model's class, config and every parameter and buffer (names, shapes and bytes)."""
    import hashlib

    digest = hashlib.sha256(type(loaded.model).__name__.encode())
    digest.update(loaded.model.config.to_json_string(use_diff=True).encode())
    for name, tensor in sorted({**dict(loaded.model.named_parameters()), **dict(loaded.model.named_buffers())}.items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # 0-d buffers too (Gemma)
    return digest.hexdigest()


def _revision(loaded: "LoadedModel") -> str | None:
    return getattr(loaded.model.config, "_commit_hash", None) or getattr(loaded.model.config, "_name_or_path", None)


def _columns(loaded: "LoadedModel", kinds: tuple[str, ...], layers: list[int], dtype: str) -> list[Column]:
    """The activation columns, with widths read from one probe forward pass."""
    widths = _probe(loaded, kinds)
    columns = []
    for layer in layers:
        if "hidden" in kinds:
            columns.append(Column(f"hidden_{layer}", "hidden", layer, widths["hidden"], dtype))
        if layer == 0:
            continue
        if "mlp" in kinds:
            columns.append(Column(f"mlp_{layer}", "mlp", layer, widths["mlp"], dtype))
        if "attention" in kinds:
            columns += [Column(f"attn_{s}_{layer}", "attention", layer, loaded.n_heads, "float32", s) for s in ROW_STATS]
    if not columns:
        raise InputError("layer 0 is the embeddings: it has hidden states only; add layers from 1 for mlp or attention-stats")
    return columns


def _probe(loaded: "LoadedModel", kinds: tuple[str, ...]) -> dict[str, int]:
    if "mlp" in kinds and len(mlp_modules(loaded.model)) != loaded.n_layers:
        raise InputError(
            f"the MLP layers of {loaded.name!r} ({type(loaded.model).__name__}) are not recognised: "
            "harvest hidden and attention-stats only"
        )
    enc = encode(loaded, ["probe"])
    with torch.inference_mode(), recording(loaded.model, attention=False) as rec:
        out = loaded.model(**enc.model_inputs(loaded.forward_keys), output_hidden_states=True, return_dict=True)
    return {"hidden": int(out.hidden_states[0].shape[-1]), "mlp": int(rec.mlp[0].shape[-1]) if rec.mlp else 0}


def token_lengths(loaded: "LoadedModel", texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Tokens per text (special tokens included, truncated as a forward pass truncates) and whether it has words.

    Examples:
        >>> import shatterbox as sb
        >>> token_lengths(sb.load(), ["The bank.", ""])
        (array([5, 2]), array([ True, False]))
    """
    special = loaded.tokenizer(texts, truncation=True, max_length=loaded.max_length, return_special_tokens_mask=True)["special_tokens_mask"]
    lengths = np.fromiter(map(len, special), dtype=np.int64, count=len(texts))
    words = np.fromiter(map(sum, special), dtype=np.int64, count=len(texts)) < lengths
    return lengths, words


def _plan(loaded: "LoadedModel", corpus: Corpus, columns: list[Column], shard_bytes: int) -> list[int]:
    """First sentence of every shard, cut so that each shard's activations take about ``shard_bytes``.

    Sized by measured tokens (the whole corpus is tokenized once, in chunks), so a run of long
    sentences does not make one shard larger than the others.
    """
    per_token = sum(c.width * np.dtype(lay.DTYPES[c.dtype]).itemsize for c in columns) + 64
    sizes = []
    for first in range(0, len(corpus), PLAN_CHUNK):
        texts = corpus.table.slice(first, PLAN_CHUNK).column("text").to_pylist()
        lengths, words = token_lengths(loaded, texts)
        sizes.append(np.where(words, lengths, 0) * per_token)
    before = np.cumsum(np.concatenate(sizes)) - np.concatenate(sizes) if sizes else np.zeros(0, np.int64)
    shard = before // max(1, shard_bytes)
    return [0] + (np.flatnonzero(np.diff(shard)) + 1).tolist() if len(shard) else [0]


def _prepare(root: Path, content: dict, overwrite: bool, plan: Callable[[], list[int]]) -> dict:
    """Create the store or check that the existing one holds the same harvest; the manifest to use."""
    existing = root / lay.MANIFEST
    if existing.exists() and overwrite:
        _clear(root)
    if existing.exists():
        old = lay.read_manifest(root)
        differences = [k for k in content if _identity(k, old.get(k)) != _identity(k, content[k])]
        if differences:
            raise StoreMismatch(_mismatch(root, old, content, differences))
        return old
    if root.exists() and any(p.name != ".DS_Store" for p in root.iterdir()) and not overwrite:
        raise StoreError(f"{str(root)!r} exists and is not a shatterbox store: give an empty or new folder as out", parameter="out")
    root.mkdir(parents=True, exist_ok=True)
    manifest = {**content, "shard_starts": plan()}
    manifest["key"] = lay.settings_key(manifest)
    manifest.update(shards=len(manifest["shard_starts"]), complete=False)
    return manifest


def _identity(key: str, value):
    """What must match for a store to be reused: a model is its class and weights hash (its name or path is a label:
    the same weights loaded from another folder are the same model)."""
    return {k: value[k] for k in ("class", "hash")} if key == "model" and isinstance(value, dict) else value


def _mismatch(root: Path, old: dict, new: dict, differences: list[str]) -> str:
    what = differences[0]
    describe = {
        "model": lambda m: f"model {m['model']['name']!r} (hash {m['model']['hash'][:12]})",
        "corpus": lambda m: f"corpus {m['corpus']['name']!r} ({m['corpus']['sentences']} sentences, hash {m['corpus']['hash'][:12]})",
        "columns": lambda m: "columns " + ", ".join(c["name"] for c in m["columns"][:4]) + (" ..." if len(m["columns"]) > 4 else ""),
    }.get(what, lambda m: f"{what} {m.get(what)!r}")
    return (
        f"the store {str(root)!r} holds {describe(old)}, but this harvest is {describe(new)}: "
        "stores are never mixed; choose another out folder, or overwrite=True to replace it"
    )


def _clear(root: Path) -> None:
    """Remove what a store consists of (and nothing else) from ``root``."""
    for path in list(root.glob(lay.SHARD_GLOB)) + list(root.glob(".part-*.tmp")) + [root / lay.MANIFEST]:
        path.unlink(missing_ok=True)
    shutil.rmtree(root / lay.SENTENCES.parent, ignore_errors=True)


def _run(root, manifest, loaded, corpus, columns, batch_tokens, repair, progress, engine: Engine) -> None:
    lay.write_manifest(root, manifest)  # first: a run killed from here on is a store that resumes
    if not (root / lay.SENTENCES).exists():
        (root / lay.SENTENCES.parent).mkdir(exist_ok=True)
        tmp = root / lay.SENTENCES.parent / ".sentences.parquet.tmp"
        pq.write_table(corpus.table, tmp, compression="zstd")
        tmp.replace(root / lay.SENTENCES)
    started = time.perf_counter()
    hint = "re-run the same harvest with repair=True (it redoes only the damaged shards)"
    done = {}
    for index, path in lay.shard_files(root).items():
        if repair and lay.verify_shard(path) is not None:
            path.unlink()
            continue
        done[index] = lay.shard_meta(path, manifest["key"], hint)
    total = len(corpus)
    counts = [sum(m["stop"] - m["first"] for m in done.values()), sum(m["rows"] for m in done.values())]
    if progress:
        progress(counts[0], counts[1], total)
    bounds = manifest["shard_starts"] + [total]
    missing = [(i, bounds[i], bounds[i + 1]) for i in range(manifest["shards"]) if i not in done]

    def landed(meta: dict) -> None:
        done[meta["shard"]] = meta
        counts[0], counts[1] = counts[0] + meta["stop"] - meta["first"], counts[1] + meta["rows"]
        if progress:
            progress(counts[0], counts[1], total)

    if engine.local:  # here, each shard is written in a background thread while the next is computed
        _run_local(root, missing, loaded, corpus, manifest, columns, batch_tokens, landed)
    else:
        def shard(model, unit) -> dict:
            index, first, stop = unit
            return _write(root, index, _shard_table(index, slice(first, stop), manifest, model, corpus, columns, batch_tokens))

        engine.map(load_source, model_source(loaded), shard, missing, lambda unit, meta: landed(meta))
    manifest.update(
        complete=True,
        tokens=int(sum(m["rows"] for m in done.values())),
        skipped=int(sum(m["skipped"] for m in done.values())),
        truncated=int(sum(m["truncated"] for m in done.values())),
    )
    manifest.setdefault("seconds", 0.0)
    manifest["seconds"] = round(float(manifest["seconds"]) + time.perf_counter() - started, 3)
    lay.write_manifest(root, manifest)


def _run_local(root, missing, loaded, corpus, manifest, columns, batch_tokens, landed: Callable[[dict], None]) -> None:
    """Compute the shards ``missing`` here; one is written in a background thread while the next is computed."""
    with ThreadPoolExecutor(max_workers=1) as writer:
        pending: Future | None = None
        for index, first, stop in missing:
            table = _shard_table(index, slice(first, stop), manifest, loaded, corpus, columns, batch_tokens)
            if pending is not None:
                landed(pending.result())
            pending = writer.submit(_write, root, index, table)
        if pending is not None:
            landed(pending.result())


def _batches(lengths: np.ndarray, budget_tokens: int, attention_row_bytes: int) -> list[np.ndarray]:
    """Groups of row numbers, shortest first, whose padded size fits the token and attention budgets."""
    order = np.argsort(lengths, kind="stable")
    groups, current, longest = [], [], 0
    for row in order:
        n = int(lengths[row])
        size = max(longest, n)
        fits = size * (len(current) + 1) <= budget_tokens and size * size * (len(current) + 1) * attention_row_bytes <= ATTENTION_BYTES
        if current and not fits:
            groups.append(np.array(current))
            current, size = [], n
        current.append(row)
        longest = size
    if current:
        groups.append(np.array(current))
    return groups


def _shard_table(index, rows, manifest, loaded, corpus, columns, batch_tokens) -> pa.Table:
    """Activations of the corpus rows ``rows`` as one shard's table (sentence order).

    Every value is copied once, from the forward pass's output into arrays allocated for the
    whole shard, so memory holds one shard and one batch, whatever the corpus size.
    """
    part = corpus.table.slice(rows.start, rows.stop - rows.start)  # only this shard's rows become Python objects
    texts = part.column("text").to_pylist()
    lengths, has_words = token_lengths(loaded, texts)
    counts = np.where(has_words, lengths, 0)
    starts = np.concatenate([[0], np.cumsum(counts)])
    shard = _ShardArrays(int(starts[-1]), columns)
    kinds = {c.kind for c in columns}
    attention_row_bytes = 4 * loaded.n_heads * loaded.n_layers if "attention" in kinds else 0
    truncated = 0
    keep = np.flatnonzero(has_words)
    for group in _batches(lengths[keep], batch_tokens, attention_row_bytes):
        batch_rows = keep[group]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            enc = encode(loaded, [texts[r] for r in batch_rows])
        truncated += sum(1 for d in enc.dropped if d)
        for r, item in zip(batch_rows, _forward(loaded, enc, columns, kinds)):
            shard.put(int(r), int(starts[r]), int(counts[r]), item)
    ids = part.column("id").to_numpy()
    meta = {
        "key": manifest["key"], "shard": index, "first": rows.start, "stop": rows.stop,
        "rows": int(starts[-1]), "sentences": len(keep), "skipped": len(texts) - len(keep), "truncated": truncated,
    }
    return shard.table(np.repeat(ids, counts), meta)


F16_MAX = float(np.finfo(np.float16).max)


class _ShardArrays:
    """One shard's columns, allocated once at their final size and filled sentence by sentence."""

    NUMERIC = {"position": np.int32, "token_id": np.int32, "word_index": np.int32, "special": bool, "char_start": np.int32, "char_end": np.int32}

    def __init__(self, rows: int, columns: list[Column]) -> None:
        self.columns = columns
        self.arrays = {name: np.empty(rows, dtype) for name, dtype in self.NUMERIC.items()}
        self.arrays.update({c.name: np.empty((rows, c.width), lay.DTYPES[c.dtype]) for c in columns})
        self.strings: dict[str, dict[int, list[str]]] = {"token": {}, "word": {}}

    def put(self, row: int, start: int, count: int, item: dict) -> None:
        """Copy one sentence's ``count`` tokens to rows ``start:start+count``."""
        if len(item["token"]) != count:
            raise StoreError(f"sentence {row} gave {len(item['token'])} tokens in the forward pass but {count} when planned: the tokenizer is not deterministic")
        for name, values in self.arrays.items():
            peak = np.abs(item[name]).max(initial=0) if values.dtype == np.float16 else 0.0
            if peak > F16_MAX:
                raise InputError(f"sentence {row} has {name} values of {peak:.3g}, beyond float16's range "
                                 f"({F16_MAX:g}; a decoder's first-token states get there): harvest with dtype float32 into a new folder (or overwrite)", parameter="dtype")
            values[start : start + count] = item[name]
        for name, by_row in self.strings.items():
            by_row[row] = item[name]

    def table(self, sentence_id: np.ndarray, meta: dict) -> pa.Table:
        """The shard as an Arrow table (numeric columns without a copy) with ``meta`` in its footer."""
        schema = pa.schema(lay.meta_schema() + [lay.activation_field(c.name, c.width, c.dtype) for c in self.columns])
        data = {"sentence_id": pa.array(sentence_id, pa.int64())}
        for name, by_row in self.strings.items():
            data[name] = pa.array([t for r in sorted(by_row) for t in by_row[r]], pa.string(), memory_pool=writer_pool())
        for field in schema:
            if field.name in self.NUMERIC:
                data[field.name] = pa.array(self.arrays[field.name], field.type)
            elif field.name not in data:
                data[field.name] = lay.fixed_list(self.arrays[field.name], field)
        return pa.Table.from_arrays([data[f.name] for f in schema], schema=schema.with_metadata({lay.META_KEY: json.dumps(meta)}))


def _forward(loaded: "LoadedModel", enc, columns: list[Column], kinds: set[str]) -> list[dict]:
    """One forward pass; per text, its token metadata and activation rows (numpy, [tokens, width])."""
    mlp_context = recording(loaded.model, attention=False) if "mlp" in kinds else nullcontext(None)
    with torch.inference_mode(), mlp_context as rec:
        out = loaded.model(
            **enc.model_inputs(loaded.forward_keys),
            output_hidden_states="hidden" in kinds,
            output_attentions="attention" in kinds,
            return_dict=True,
            **loaded.keep_logits(1),  # the store keeps no logits: a decoder's unembedding of every position would be most of the cost
        )
    arrays: dict[str, np.ndarray] = {}
    for c in columns:
        if c.kind == "hidden":
            arrays[c.name] = out.hidden_states[c.layer].float().numpy()
        elif c.kind == "mlp":
            arrays[c.name] = rec.mlp[c.layer - 1].float().numpy()
    attention = {c.layer: out.attentions[c.layer - 1].float().numpy() for c in columns if c.kind == "attention"}
    causal = bool(getattr(loaded.model.config, "is_decoder", False)) or _looks_causal(attention, enc.lengths)
    items = []
    for i, text in enumerate(enc.texts):
        n = int(enc.lengths[i])
        al = align(loaded.tokenizer, enc.batch, i, n, (text, None))
        item = {
            "position": np.arange(n, dtype=np.int32),
            "token": al.tokens,
            "token_id": enc.batch["input_ids"][i, :n].numpy().astype(np.int32),
            "word_index": al.word_index.astype(np.int32),
            "word": np.asarray(al.words, dtype=object)[al.word_index].tolist(),
            "special": al.special,
            "char_start": al.offsets[:, 0],
            "char_end": al.offsets[:, 1],
        }
        for name, values in arrays.items():
            item[name] = values[i, :n]
        if attention:
            item.update(_attention_rows(attention, i, n, al, causal, loaded.model.config))
        items.append(item)
    return items


def _looks_causal(attention: dict[int, np.ndarray], lengths) -> bool:
    """A decoder's attention is exactly 0 above the diagonal for every text, layer and head (real tokens only: a
    padding query's row is whatever the mask left it)."""
    if not attention:
        return False
    first = next(iter(attention.values()))
    for i, n in enumerate(lengths):
        n = int(n)
        if n > 1:
            return not first[i, :, :n, :n][..., np.triu(np.ones((n, n), bool), 1)].any()
    return False


def _attention_rows(attention: dict[int, np.ndarray], i: int, n: int, al, causal: bool, config=None) -> dict[str, np.ndarray]:
    layers = sorted(attention)
    probs = np.stack([attention[l][i, :, :n, :n] for l in layers])  # [layers, heads, n, n]
    allowed = np.stack([allowed_keys(n, causal=causal, window=layer_window(config, l)) for l in layers])[:, None]  # sliding windows too
    punct = np.array([is_punct(label) and not s for label, s in zip(al.labels, al.special)], dtype=bool)
    stats = row_stats(probs, np.broadcast_to(allowed, probs.shape), al.special, punct)
    rows = {}
    for k, layer in enumerate(layers):
        for stat, values in stats.items():
            rows[f"attn_{stat}_{layer}"] = values[k].T.astype(np.float32)  # [tokens, heads]
    return rows


def _write(root: Path, index: int, table: pa.Table) -> dict:
    """Write the shard to a temporary file, then rename it: a shard exists whole or not at all; its metadata."""
    final = lay.shard_path(root, index)
    tmp = final.with_name(f".{final.name}.tmp")
    row_bytes = max(1, table.nbytes // max(1, table.num_rows))
    activation = [f.name for f in table.schema if f.name not in lay.META_COLUMNS]
    pq.write_table(
        table,
        tmp,
        row_group_size=max(1024, ROW_GROUP_BYTES // row_bytes),
        compression={**{n: "zstd" for n in lay.META_COLUMNS}, **{n: "none" for n in activation}},
        use_dictionary=["token", "word"],
        write_statistics=list(lay.META_COLUMNS),
        write_page_checksum=True,
        memory_pool=writer_pool(),
    )
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    tmp.replace(final)
    return json.loads(table.schema.metadata[lay.META_KEY])

