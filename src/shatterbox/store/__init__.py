"""The activation store: what every layer computes over a corpus, harvested once and read by every corpus analysis.

``harvest(corpus, out, model=..., layers=..., what=...)`` runs the model in length-sorted batches and
writes one row per token to Parquet shards in ``out``; ``Store.open(out)`` reads them back.

Layout of a store folder::

    manifest.json              model (name, class, SHA-256 of the weights), corpus (name, SHA-256,
                               sentences), columns, dtype, shard_starts (first sentence of each
                               shard, cut by measured tokens), settings key, completeness
    part-00000.parquet ...     token rows of a fixed range of corpus sentences, written whole or not at all
                               (temporary file + rename); page checksums; own metadata in the footer
    corpus/sentences.parquet   the corpus: id, text and its label columns

Token rows: ``sentence_id``, ``position``, ``token``, ``token_id``, ``word_index``, ``word``,
``special``, ``char_start`` and ``char_end`` (the token's characters in the sentence), then fixed-size list columns ``hidden_L`` (L = 0 embeddings, 1.. layer outputs),
``mlp_L`` (MLP neuron activations of layer L) and ``attn_<stat>_L`` (per head: entropy, special,
punct, prev, self, next of the token's attention row; see :mod:`shatterbox.trace.stats`).

DuckDB reads the shards directly: ``duckdb.sql("select word, count(*) from 'STORE/*.parquet' group by word")``.

Examples:
    >>> import tempfile
    >>> from shatterbox.corpus import load_corpus
    >>> store = harvest(load_corpus("wordnet", limit=20), tempfile.mkdtemp(), layers="3", what="hidden,attention-stats")
    >>> store.columns[:2], store.complete
    (['hidden_3', 'attn_entropy_3'], True)
"""

from shatterbox.store._control import check_control, control_problems, random_seed, same_sentences
from shatterbox.store._harvest import BATCH_TOKENS, SHARD_BYTES, Column, harvest, harvested_model, model_hash, parse_layers, parse_ranges, parse_what
from shatterbox.store._layout import META_COLUMNS
from shatterbox.store._store import Store, TopK, as_store

__all__ = ["BATCH_TOKENS", "META_COLUMNS", "SHARD_BYTES", "Column", "Store", "TopK", "as_store", "check_control", "control_problems", "harvest", "harvested_model", "model_hash",
           "parse_layers", "parse_ranges", "parse_what", "random_seed", "same_sentences"]
