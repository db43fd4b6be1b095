"""Attribution: shatterbox vs shap's Partition explainer and lime's LimeTextExplainer, same model, same run.

Model: the shipped sentiment classifier (the default encoder fine-tuned with low-rank adapters, linear head). Every tool
gets the same batched scoring function ``f(list[str]) -> probabilities`` (shatterbox calls the model
on token ids it masked itself). For each text and tool: seconds, model texts evaluated, and, for
texts of at most 14 words, the mean absolute error of the positive-label values against exact
Shapley values over words (all 2^n coalitions, masking by the mask token) and the top-3 word
agreement with them. Peak memory (tracemalloc, Python allocations) per tool is printed too.

Masking: shatterbox replaces a word's tokens by [MASK]; shap gets the Text masker with
mask_token="[MASK]" and collapse_mask_token=False (each masked token becomes [MASK], the same
texts as ours); its token values are summed into the same words. lime removes words (its only
mode) and splits on non-word characters; its top words are matched by lower-cased string.

    python bench/attribution.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import tracemalloc
import warnings

import numpy as np
import torch

from shatterbox.attribution import TokenGame, explain, shapley_exact
from shatterbox.classifiers.sentiment import sentiment

TEXTS = [
    "I love playing chess with my friends.",
    "The soup was cold, bland and far too salty.",
    "Not bad at all, actually quite good.",
    "Our flight was delayed six hours with no explanation.",
    "The waiter remembered our names and made great suggestions.",
    "I was worried at first, but it turned out to be excellent.",
    "The price was a little high, but the quality is worth every penny.",
    "This tent leaked on the first night of light rain.",
    "A gripping thriller that kept me guessing until the end.",
    "Despite the rain, we had a wonderful day out by the lake.",
    "The instructions were useless and assembly took hours of my weekend.",
    "Customer support kept me on hold for an hour and solved nothing at all.",
    "The whole experience was a pleasure, from booking to check out, and I would not hesitate to stay here again.",
    "After a week of using this moisturiser, my skin was red, itchy and drier than before.",
    "The lecturer took complex ideas, broke them into small steps and made the whole room excited about statistics.",
    "The hotel near the station was noisy all night, the sheets were stained and the owner shrugged when we complained.",
    "From the warm welcome at the door to the final dessert, every part of the evening felt generous and carefully prepared.",
    "The novel stretches a thin idea over five hundred pages of repetitive and lifeless prose, and I struggled to finish it.",
    "Setup took two minutes, the picture is vivid, and the remote is the simplest I have ever used, so I am very happy with it.",
    "I had high hopes for this restaurant after reading the reviews, but the food was cold, the staff ignored us, "
    "and the bill was wrong.",
    "The surgeon explained every step, answered all our questions, and my mother was home and smiling within a week, "
    "which we will never forget.",
    "Although the first chapters are slow and the main character is hard to like at the beginning, the second half of "
    "the book is gripping, moving and beautifully written.",
]
EXACT_MAX_WORDS = 14


def top3(words: list[str], values: np.ndarray) -> list[str]:
    return [words[i].lower() for i in np.argsort(-values, kind="stable")[:3]]


class Counted:
    """The shared scoring function, counting the texts it scores."""

    def __init__(self, classifier) -> None:
        self.classifier, self.texts = classifier, 0

    def __call__(self, texts) -> np.ndarray:
        texts = [str(t) for t in texts]
        self.texts += len(texts)
        return self.classifier.predict(texts)


def run_shap(classifier, text: str, game: TokenGame):
    import shap

    f = Counted(classifier)
    masker = shap.maskers.Text(classifier.tokenizer, mask_token="[MASK]", collapse_mask_token=False)
    explainer = shap.Explainer(f, masker, output_names=classifier.labels, silent=True)
    start = time.perf_counter()
    sv = explainer([text], silent=True)
    seconds = time.perf_counter() - start
    word_ids = classifier.tokenizer(text).word_ids()  # with [CLS] and [SEP]: shap's values have a slot for each
    values = sv.values[0][:, 1]
    assert len(values) == len(word_ids), (text, len(values), len(word_ids))
    keep = np.array([w is not None for w in word_ids])
    words = np.zeros(game.n)
    np.add.at(words, np.array([w for w in word_ids if w is not None], dtype=int), values[keep])
    return words, seconds, f.texts, "Partition, Text masker ([MASK] per token, no collapse)"


def run_lime(classifier, text: str, game: TokenGame):
    from lime.lime_text import LimeTextExplainer

    f = Counted(classifier)
    explainer = LimeTextExplainer(class_names=classifier.labels)
    start = time.perf_counter()
    exp = explainer.explain_instance(text, f, labels=(1,))
    seconds = time.perf_counter() - start
    weights = {w.lower(): v for w, v in exp.as_list(label=1)}
    values = np.array([weights.get(w.lower(), 0.0) for w in game.words])
    return values, seconds, f.texts, "LimeTextExplainer defaults (5000 samples, word removal)"


def run_ours(classifier, text: str, game: TokenGame, method: str, **options):
    start = time.perf_counter()
    a = explain(classifier, text, method=method, score=False, **options)
    seconds = time.perf_counter() - start
    how = f"{a.method}, masking {a.masking}" + (f", {options['dtype']}" if "dtype" in options else "")
    return a.values[:, 1], seconds, a.evaluations, how


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="six texts only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    classifier = sentiment()
    texts = TEXTS[::4] if args.quick else TEXTS
    tools = {
        "shap Partition": lambda t, g: run_shap(classifier, t, g),
        "lime": lambda t, g: run_lime(classifier, t, g),
        "shatterbox (default)": lambda t, g: run_ours(classifier, t, g, "shapley"),
        "shatterbox --pairs 1": lambda t, g: run_ours(classifier, t, g, "sampled", pairs=1),
        "shatterbox --pairs 2": lambda t, g: run_ours(classifier, t, g, "sampled", pairs=2),
        "shatterbox --pairs 2 --bf16": lambda t, g: run_ours(classifier, t, g, "sampled", pairs=2, dtype="bfloat16"),
        "shatterbox LIME 500": lambda t, g: run_ours(classifier, t, g, "lime"),
        "shatterbox Kernel SHAP 500": lambda t, g: run_ours(classifier, t, g, "kernel"),
        "shatterbox Kernel SHAP 500 --bf16": lambda t, g: run_ours(classifier, t, g, "kernel", dtype="bfloat16"),
    }
    for tool in tools.values():  # warm-up: imports, first calls
        tool(texts[0], TokenGame(classifier, texts[0]))
    rows = {name: {"seconds": [], "texts": [], "mae": [], "top3": [], "peak": 0} for name in tools}
    for text in texts:
        game = TokenGame(classifier, text)
        exact = shapley_exact(game, game.n, batch_size=4096).values[:, 1] if game.n <= EXACT_MAX_WORDS else None
        for name, tool in tools.items():
            tracemalloc.start()
            values, seconds, evaluated, how = tool(text, game)
            rows[name]["peak"] = max(rows[name]["peak"], tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            rows[name].setdefault("how", set()).add(how)
            rows[name]["seconds"].append(seconds)
            rows[name]["texts"].append(evaluated)
            if exact is not None:
                rows[name]["mae"].append(float(np.abs(values - exact).mean()))
                rows[name]["top3"].append(len(set(top3(game.words, values)) & set(top3(game.words, exact))) / 3)
    lengths = [len(re.findall(r"\w+", t)) for t in texts]
    print(f"{len(texts)} texts of {min(lengths)}-{max(lengths)} words; error and top-3 on the {len(rows['lime']['mae'])} texts of <= {EXACT_MAX_WORDS} words\n")
    print(f"{'tool':28s} {'s/text':>8s} {'texts/text':>10s} {'MAE vs exact':>12s} {'top-3':>6s} {'peak MB':>8s}  masking / settings")
    for name, r in rows.items():
        print(
            f"{name:28s} {statistics.mean(r['seconds']):8.3f} {statistics.mean(r['texts']):10.0f} "
            f"{statistics.mean(r['mae']):12.4f} {statistics.mean(r['top3']):6.2f} {r['peak'] / 2**20:8.1f}  {' / '.join(sorted(r['how']))}"
        )
    shap_s, lime_s = statistics.mean(rows["shap Partition"]["seconds"]), statistics.mean(rows["lime"]["seconds"])
    print()
    for name in [n for n in rows if n.startswith("shatterbox")]:
        s = statistics.mean(rows[name]["seconds"])
        print(f"{name}: {shap_s / s:5.1f}x faster than shap, {lime_s / s:5.1f}x faster than lime")


if __name__ == "__main__":
    main()
