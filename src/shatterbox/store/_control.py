"""Is a store the control of another: the same architecture with random weights, over the same corpus and settings?

Every corpus-level number is read against the same analysis on a random-weight model; a control that is not one
(the trained store itself, another corpus, another architecture) would make a weak result look strong. The
manifests record what decides it: the model's name (``... (random weights, seed N)``), class and weights hash,
the corpus hash, the dtype and the maximum length.
"""

from __future__ import annotations

import re

from shatterbox.errors import InputError

__all__ = ["check_control", "control_problems", "random_seed", "same_sentences"]

RANDOM_NAME = re.compile(r"^(?P<base>.*) \(random weights, seed (?P<seed>-?\d+)\)$")


def random_seed(manifest: dict) -> int | None:
    """The random-weights seed a store's model was made with, or None for trained weights.

    Examples:
        >>> random_seed({"model": {"name": "default (random weights, seed 3)"}}), random_seed({"model": {"name": "default"}})
        (3, None)
    """
    found = RANDOM_NAME.match(manifest["model"]["name"])
    return None if found is None else int(found["seed"])


def control_problems(trained: dict, control: dict, *, same_texts: bool = False) -> list[str]:
    """What keeps the store of manifest ``control`` from being the random-weight control of ``trained`` (empty: none).
    ``same_texts``: the two corpora hash apart but hold the same sentences in the same order (built another way).

    Examples:
        >>> m = {"model": {"name": "default", "class": "BertModel", "hash": "a"}, "corpus": {"name": "wordnet", "hash": "c", "sentences": 9},
        ...      "dtype": "float32", "max_length": 512}
        >>> control_problems(m, {**m, "model": {"name": "default (random weights, seed 1)", "class": "BertModel", "hash": "b"}})
        []
        >>> control_problems(m, m)
        ['it has the same weights (it is the trained store itself)', "its model 'default' has trained weights: harvest the control with --random-weights SEED"]
    """
    t, c, problems = trained["model"], control["model"], []
    if c["hash"] == t["hash"]:
        problems.append("it has the same weights (it is the trained store itself)")
    base = RANDOM_NAME.match(c["name"])
    if base is None:
        problems.append(f"its model {c['name']!r} has trained weights: harvest the control with --random-weights SEED")
    elif base["base"] != t["name"] or c.get("class") != t.get("class"):
        problems.append(f"its architecture is {base['base']!r} ({c.get('class')}), not {t['name']!r} ({t.get('class')})")
    if random_seed(trained) is not None:
        problems.append(f"the store it would control has random weights itself ({t['name']!r})")
    tc, cc = trained["corpus"], control["corpus"]
    if tc["hash"] != cc["hash"] and not same_texts:
        problems.append(f"its corpus differs ({cc['name']}, {cc['sentences']:,} sentences, against {tc['name']}, {tc['sentences']:,})")
    for key in ("dtype", "max_length"):
        if trained.get(key) != control.get(key):
            problems.append(f"its {key} is {control.get(key)}, not {trained.get(key)}")
    return problems


def same_sentences(a, b) -> bool:
    """Whether two stores were harvested from the same sentences in the same order (their corpus hashes aside)."""
    if a.manifest["corpus"]["hash"] == b.manifest["corpus"]["hash"]:
        return True
    if a.manifest["corpus"]["sentences"] != b.manifest["corpus"]["sentences"]:
        return False
    return a.sentences().column("text").equals(b.sentences().column("text"))


def check_control(trained, control, *, parameter: str = "control") -> None:
    """Refuse ``control`` (a Store) as the random-weight control of ``trained`` in one line saying what differs.

    Examples:
        >>> class S:  # a store's name and manifest are all the check reads when the corpora hash alike
        ...     def __init__(self, name, manifest): self.root, self.manifest = __import__("pathlib").Path(name), manifest
        >>> m = {"model": {"name": "default", "class": "BertModel", "hash": "a"}, "corpus": {"name": "wordnet", "hash": "c", "sentences": 9}}
        >>> check_control(S("wn", m), S("wn", m))
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: wn cannot be the random-weight control of wn: it has the same weights (it is the trained store itself); its model 'default' has trained weights: harvest the control with --random-weights SEED
    """
    problems = control_problems(trained.manifest, control.manifest, same_texts=same_sentences(trained, control))
    if problems:
        raise InputError(f"{control.root.name} cannot be the random-weight control of {trained.root.name}: " + "; ".join(problems), parameter=parameter)
