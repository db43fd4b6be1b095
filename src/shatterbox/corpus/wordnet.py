"""The shipped corpus: WordNet 3.0 glosses and example sentences with their sense labels.

WordNet's data files (``data.noun``, ``data.verb``, ``data.adj``, ``data.adv``; Debian package
``wordnet-base``) hold one synset per line: its lemmas, its lexicographer file (the *supersense*,
e.g. ``noun.animal``), pointers, and a gloss made of a definition and quoted example sentences.
:func:`parse` turns them into one row per sentence:

============  ==========================================================================
column        meaning
============  ==========================================================================
``id``        row number (stable: file order noun, verb, adj, adv; gloss before examples)
``text``      the sentence: a definition (``kind = gloss``) or a quoted example
``kind``      ``gloss`` or ``example``
``synset``    the sense, named like NLTK: first lemma, part of speech, sense number
              of that lemma (``bank.n.02``)
``offset``    the synset's byte offset in its data file (WordNet's own id)
``pos``       ``noun``, ``verb``, ``adj`` or ``adv``
``supersense``  the lexicographer file (``noun.artifact``, ``verb.motion``, ...)
``lemmas``    the synset's lemmas, ``|``-separated (``bank|depository_financial_institution``)
``word``      in an example: the words that carry the sense as written (``banks``), else empty
``start``     character offset of ``word`` in ``text`` (-1 where not found or a gloss)
``end``       end offset of ``word`` (exclusive; -1 likewise)
============  ==========================================================================

``python -m shatterbox.corpus.wordnet [WORDNET_DIR]`` regenerates the shipped file from the
Debian files; :func:`shatterbox.corpus.wordnet_corpus` reads it with no WordNet installed.

Examples:
    >>> lines = ["00003993 03 n 01 congener 0 001 @ 00003553 n 0000 | a whole of the same kind; "
    ...          '"its congener, butter, was used"  ']
    >>> rows = parse_lines(lines, "n", {("congener", "n"): [3993]})
    >>> [(r["kind"], r["synset"], r["word"], r["start"]) for r in rows]
    [('gloss', 'congener.n.01', '', -1), ('example', 'congener.n.01', 'congener', 4)]
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Iterable

DEBIAN_DIR = "/usr/share/wordnet"
EXCEPTIONS_FILE = Path(__file__).parent / "data" / "wordnet-exceptions.tsv"
DATA_FILE = Path(__file__).parent / "data" / "wordnet.parquet"
LICENSE_FILE = Path(__file__).parent / "data" / "LICENSE-WordNet.txt"
POS_FILES = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))
POS_NAMES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
COLUMNS = ("id", "text", "kind", "synset", "offset", "pos", "supersense", "lemmas", "word", "start", "end")

# WordNet 3.0's lexicographer files, by the two-digit number in each data line (lexnames(5WN)).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()

_MARKER = re.compile(r"\((a|p|ip)\)$")  # adjective position markers: big(a), galore(ip)
_QUOTED = re.compile(r'"([^"]+)"')
_VOWELS = set("aeiou")


def _is_licence(line: str) -> bool:
    return line.startswith("  ")


def read_licence(wordnet_dir: str | os.PathLike[str] = DEBIAN_DIR) -> str:
    """WordNet's licence notice, as printed at the top of every data file (numbers stripped).

    Examples:
        >>> "Princeton University" in LICENSE_FILE.read_text()
        True
    """
    lines = []
    with open(Path(wordnet_dir) / "data.noun", encoding="utf-8") as handle:
        for line in handle:
            if not _is_licence(line):
                break
            lines.append(re.sub(r"^\s+\d+\s?", "", line).rstrip())
    return "\n".join(lines).strip() + "\n"


def read_index(wordnet_dir: str | os.PathLike[str], pos_file: str) -> dict[tuple[str, str], list[int]]:
    """(lemma, pos letter) -> synset offsets in WordNet's sense order, from ``index.<pos_file>``."""
    senses: dict[tuple[str, str], list[int]] = {}
    with open(Path(wordnet_dir) / f"index.{pos_file}", encoding="utf-8") as handle:
        for line in handle:
            if _is_licence(line):
                continue
            fields = line.split()
            count = int(fields[2])
            senses[(fields[0], fields[1])] = [int(x) for x in fields[-count:]]
    return senses


def read_exceptions(wordnet_dir: str | os.PathLike[str], pos_file: str) -> dict[str, list[str]]:
    """Base form -> irregular inflections, from ``<pos_file>.exc`` (``mice`` for ``mouse``)."""
    path = Path(wordnet_dir) / f"{pos_file}.exc"
    forms: dict[str, list[str]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            inflected, *bases = line.split()
            for base in bases:
                forms.setdefault(base, []).append(inflected)
    return forms


def inflections(word: str, pos: str, irregular: dict[str, list[str]] | None = None) -> list[str]:
    """Regular (and given irregular) inflected forms of one word, the word itself first.

    Examples:
        >>> [f for f in ("stops", "stopped", "stopping", "carried") if f in inflections("stop", "v")]
        ['stops', 'stopped', 'stopping']
        >>> "carries" in inflections("carry", "v")
        True
    """
    forms = [word]
    if pos == "n":
        forms += [word + "s", word + "es"]
        if word.endswith("y"):
            forms.append(word[:-1] + "ies")
    elif pos == "v":
        forms += [word + "s", word + "ed", word + "ing", word + "es", word + "d"]
        if len(word) > 2 and word[-1] not in _VOWELS | {"w", "x", "y"} and word[-2] in _VOWELS:
            forms += [word + word[-1] + "ed", word + word[-1] + "ing"]
        if word.endswith("e"):
            forms.append(word[:-1] + "ing")
        if word.endswith("y"):
            forms += [word[:-1] + "ied", word[:-1] + "ies"]
    elif pos in ("a", "s"):
        forms += [word + "er", word + "est", word + "r", word + "st"]
        if word.endswith("y"):
            forms += [word[:-1] + "ier", word[:-1] + "iest"]
    forms += (irregular or {}).get(word, [])
    return list(dict.fromkeys(f for f in forms if f))


def _lemma_forms(lemma: str, pos: str, irregular: dict[str, list[str]]) -> list[str]:
    """Forms of a (possibly multi-word) lemma: verbs inflect their first word, others their last."""
    parts = lemma.replace("_", " ").split(" ")
    at = 0 if pos == "v" else len(parts) - 1
    forms = []
    for form in inflections(parts[at].lower(), pos, irregular):
        words = list(parts)
        words[at] = form
        forms.append(" ".join(words))
    return forms


def sense_span(text: str, lemmas: list[str], pos: str, irregular: dict[str, list[str]]) -> tuple[str, int, int]:
    """Where ``text`` writes one of ``lemmas`` (inflected or not): (surface form, start, end), or ("", -1, -1).

    The earliest match wins, the longest at the same place.

    Examples:
        >>> sense_span("he banks at the bank", ["bank"], "v", {})
        ('banks', 3, 8)
    """
    best: tuple[int, int] | None = None
    for lemma in lemmas:
        forms = sorted(_lemma_forms(lemma, pos, irregular), key=len, reverse=True)
        pattern = r"(?<![\w-])(" + "|".join(re.escape(f).replace(r"\ ", r"[\s-]") for f in forms) + r")(?![\w-])"
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match and (best is None or (match.start(), -match.end()) < (best[0], -best[1])):
            best = (match.start(), match.end())
    if best is None:
        return "", -1, -1
    return text[best[0]:best[1]], best[0], best[1]


def _synset_name(lemma: str, letter: str, offset: int, index: dict[tuple[str, str], list[int]]) -> str:
    key = (lemma.lower(), "a" if letter == "s" else letter)
    offsets = index.get(key, [])
    number = offsets.index(offset) + 1 if offset in offsets else 1
    return f"{lemma.lower()}.{letter}.{number:02d}"


def parse_lines(
    lines: Iterable[str],
    letter: str,
    index: dict[tuple[str, str], list[int]],
    irregular: dict[str, list[str]] | None = None,
    first_id: int = 0,
) -> list[dict]:
    """Rows (see the module docstring) of the synset lines of one data file (licence lines skipped)."""
    rows: list[dict] = []
    irregular = irregular or {}
    for line in lines:
        if _is_licence(line) or " | " not in line:
            continue
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        offset, lexfile, ss_type, count = int(fields[0]), int(fields[1]), fields[2], int(fields[3], 16)
        lemmas = [_MARKER.sub("", w) for w in fields[4 : 4 + 2 * count : 2]]
        base = {
            "synset": _synset_name(lemmas[0], ss_type, offset, index),
            "offset": offset,
            "pos": POS_NAMES[ss_type],
            "supersense": LEXNAMES[lexfile],
            "lemmas": "|".join(lemmas),
        }
        gloss = gloss.strip()
        definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
        if definition:
            rows.append({"id": first_id + len(rows), "text": definition, "kind": "gloss", **base, "word": "", "start": -1, "end": -1})
        for example in _QUOTED.findall(gloss):
            example = example.strip()
            if not example:
                continue
            word, start, end = sense_span(example, lemmas, ss_type, irregular)
            rows.append({"id": first_id + len(rows), "text": example, "kind": "example", **base, "word": word, "start": start, "end": end})
    return rows


def parse(wordnet_dir: str | os.PathLike[str] = DEBIAN_DIR) -> list[dict]:
    """Every gloss and example sentence of WordNet's four data files, as rows with their labels."""
    rows: list[dict] = []
    for pos_file, letter in POS_FILES:
        index = read_index(wordnet_dir, pos_file)
        irregular = read_exceptions(wordnet_dir, pos_file)
        with open(Path(wordnet_dir) / f"data.{pos_file}", encoding="utf-8") as handle:
            rows += parse_lines(handle, letter, index, irregular, first_id=len(rows))
    return rows


def build(wordnet_dir: str | os.PathLike[str] = DEBIAN_DIR, out: str | os.PathLike[str] = DATA_FILE) -> Path:
    """Parse WordNet and write the shipped Parquet file (zstd) and the licence notice beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = parse(wordnet_dir)
    table = pa.table({name: [r[name] for r in rows] for name in COLUMNS})
    table = table.cast(pa.schema([(n, pa.int32() if n in ("id", "offset", "start", "end") else pa.string()) for n in COLUMNS]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out, compression="zstd", compression_level=19, row_group_size=1 << 20)
    (out.parent / LICENSE_FILE.name).write_text(read_licence(wordnet_dir), encoding="utf-8")
    write_exceptions(wordnet_dir, out.parent / EXCEPTIONS_FILE.name)
    return out


def write_exceptions(wordnet_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """The irregular forms of all parts of speech (``inflected<TAB>base``, sorted) for the lemmatizer."""
    pairs = sorted({(inflected, base) for pos_file in ("noun", "verb", "adj", "adv")
                    for base, forms in read_exceptions(wordnet_dir, pos_file).items() for inflected in forms})
    Path(out).write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    """``python -m shatterbox.corpus.wordnet [WORDNET_DIR [OUT]]``: regenerate the shipped corpus."""
    args = sys.argv[1:] if argv is None else argv
    source = args[0] if args else DEBIAN_DIR
    if not (Path(source) / "data.noun").exists():
        raise SystemExit(f"error: no WordNet data files in {source!r}: install Debian's wordnet-base or pass the folder")
    out = build(source, args[1] if len(args) > 1 else DATA_FILE)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
