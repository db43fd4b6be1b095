"""Which words drive each class across a dataset: every text explained (quick sampled Shapley by default, any
method of :func:`shatterbox.attribution.explain`), results written part by part so a killed run resumes, then
aggregated per word and label with counts, means and 95 % intervals, sign consistency and drill-down.

Examples:
    >>> run = explain_corpus(["I loved the film.", "I hated the film.", "A loved and hated film."])
    >>> table = word_table(run, by="lemma")
    >>> top_words(table, "positive", k=1, min_count=1).column("word").to_pylist()
    ['loved']
"""

from shatterbox.errors import moved_names
from shatterbox.global_attribution._aggregate import BY, dataset_payload, drill_down, flips, keys_of, least_faithful, per_text, top_words, word_table
from shatterbox.global_attribution._run import (DEFAULT_PAIRS, KERNEL_PER_WORD, MAX_WORDS, CorpusRun, Screened, CorpusSettings, explain_corpus, explain_text, read_texts,
                                               screen)

__all__ = ["BY", "DEFAULT_PAIRS", "KERNEL_PER_WORD", "MAX_WORDS", "CorpusRun", "Screened", "CorpusSettings", "dataset_payload", "drill_down", "explain_corpus", "explain_text", "flips", "keys_of",
           "least_faithful", "per_text", "read_texts", "screen", "top_words", "word_table"]

__getattr__ = moved_names(__name__, {"Settings": "shatterbox.global_attribution:CorpusSettings"})
