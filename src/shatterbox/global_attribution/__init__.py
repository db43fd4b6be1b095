"""Which words drive each class across a dataset: every text explained (quick sampled Shapley by default, any
method of :func:`shatterbox.attribution.explain`), results written part by part so a killed run resumes, then
aggregated per word and label with counts, means and 95 % intervals, sign consistency and drill-down.

Examples:
    >>> run = explain_corpus(["I loved the film.", "I loved the music.", "We loved it.", "I hated the film.", "I hated the plot.", "We hated it."])
    >>> table = word_table(run, by="lemma")
    >>> up, down = (top_words(table, "positive", k=2, direction=d, min_count=2).column("word").to_pylist() for d in ("up", "down"))
    >>> up, down  # "film", "it" and "we": intervals across zero, on neither side
    (['loved', 'i'], ['hated'])
"""

from shatterbox.errors import moved_names
from shatterbox.global_attribution._aggregate import BY, dataset_payload, drill_down, flips, keys_of, least_faithful, per_text, top_words, word_table
from shatterbox.global_attribution._run import (DEFAULT_PAIRS, KERNEL_PER_WORD, MAX_WORDS, CorpusRun, Screened, CorpusSettings, explain_corpus, explain_text, read_texts,
                                               screen)

__all__ = ["BY", "DEFAULT_PAIRS", "KERNEL_PER_WORD", "MAX_WORDS", "CorpusRun", "Screened", "CorpusSettings", "dataset_payload", "drill_down", "explain_corpus", "explain_text", "flips", "keys_of",
           "least_faithful", "per_text", "read_texts", "screen", "top_words", "word_table"]

__getattr__ = moved_names(__name__, {"Settings": "shatterbox.global_attribution:CorpusSettings"})
