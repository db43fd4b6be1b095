"""The one family of errors shatterbox raises for bad input.

Every front end (CLI, web app, notebook) catches :class:`ShatterboxError` and shows
its message as one line; the message always says what to do instead.

Examples:
    >>> from shatterbox.errors import LayerOutOfRange
    >>> str(LayerOutOfRange(7, 6))
    'layer 7 is out of range: this model has layers 1-6 (numbered from 1)'
"""

from __future__ import annotations

__all__ = ["AttentionUnavailable", "DrawnAndShownByRender", "DrawnByRender", "BudgetTooSmall", "EmptyText", "HeadOutOfRange", "InputError", "InvalidTrace", "LLMError", "LayerOutOfRange", "ModelNotAvailable", "NotAClassifier", "Note", "ShatterboxDeprecationWarning", "ShatterboxError", "StoreCorrupt", "StoreError", "StoreMismatch", "TextTooLong", "UnknownLabel", "UnknownWord", "deprecated", "moved_names"]


class ShatterboxError(Exception):
    """Base class: a problem with the user's input or environment, with a fix in its message.

    ``parameter`` names the library parameter at fault, when one is: the message speaks of it by that name, and
    each front end shows its own word for it (the CLI its flag, the web app its field).

    Examples:
        >>> e = InputError("workers must be at least 1 (got 0)", parameter="workers")
        >>> e.parameter, str(e)
        ('workers', 'workers must be at least 1 (got 0)')
    """

    def __init__(self, *args: object, parameter: str | None = None) -> None:
        super().__init__(*args)
        self.parameter = parameter


class ModelNotAvailable(ShatterboxError):
    """The model cannot be found locally and cannot be downloaded."""


class AttentionUnavailable(ShatterboxError):
    """The model does not expose attention probabilities through Hugging Face's attention interface."""


class InputError(ShatterboxError):
    """The text, a word, a layer or a head given by the user is not usable."""


class EmptyText(InputError):
    """The text has no tokens to analyse."""

    def __init__(self, what: str = "text") -> None:
        super().__init__(f"the {what} is empty (or has no characters the tokenizer keeps): give a sentence to analyse")


class TextTooLong(InputError):
    """The text is longer than the model accepts and truncation was refused."""


class _OutOfRange(InputError):
    kind = "item"

    def __init__(self, value: int, count: int) -> None:
        self.value, self.count = value, count
        super().__init__(
            f"{self.kind} {value} is out of range: this model has {self.kind}s 1-{count} (numbered from 1)"
        )


class LayerOutOfRange(_OutOfRange):
    """A layer number outside 1..n_layers."""

    kind = "layer"


class HeadOutOfRange(_OutOfRange):
    """A head number outside 1..n_heads."""

    kind = "head"


class UnknownWord(InputError):
    """A word that is not in the analysed text."""

    def __init__(self, word: str, words: list[str]) -> None:
        listed = ", ".join(repr(w) for w in words)
        super().__init__(f"the word {word!r} is not in the text; its words are: {listed}")


class InvalidTrace(ShatterboxError):
    """A file that is not a saved shatterbox Trace."""


class NotAClassifier(InputError):
    """A model without a classification head was given where class probabilities are needed."""


class UnknownLabel(InputError):
    """A class label that the classifier does not have."""

    def __init__(self, label: object, labels: list[str]) -> None:
        listed = ", ".join(repr(x) for x in labels)
        super().__init__(f"the label {label!r} is not one of this classifier's labels: {listed}")


class BudgetTooSmall(InputError):
    """An explanation needs more model evaluations than the budget allows."""


class StoreError(ShatterboxError):
    """An activation store that cannot be used as asked: missing, of another model or corpus, damaged."""


class StoreMismatch(StoreError):
    """A store made from another model, corpus or settings than the harvest that would add to it."""


class StoreCorrupt(StoreError):
    """A store shard that is truncated or damaged; the message names it and the repair."""


class LLMError(ShatterboxError):
    """A chat endpoint could not be used (unreachable, too slow, refused, or its answer is not a chat completion)."""


class Note(str):
    """A note attached to a result (``Attribution.notes``, ...): its text, plus ``kind`` ("warning": the result is
    weaker than asked, e.g. a precision not reached; "info" otherwise) and the ``parameter`` that would change it.
    It is a ``str``, so results serialise as before.

    Examples:
        >>> n = Note("precision 0.01 not reached within 300 evaluations: raise budget=1,200", kind="warning", parameter="budget")
        >>> n.kind, n.parameter, n.startswith("precision")
        ('warning', 'budget', True)
    """

    kind: str
    parameter: str | None

    def __new__(cls, text: str, *, kind: str = "info", parameter: str | None = None) -> "Note":
        note = super().__new__(cls, text)
        note.kind, note.parameter = kind, parameter
        return note


class ShatterboxDeprecationWarning(FutureWarning):
    """A name that goes away in the next release; the message names its replacement (shown to users by default)."""


def deprecated(old: str, new: str) -> None:
    """Warn once per call site that ``old`` goes away in the next release and ``new`` replaces it.

    Examples:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     deprecated("Trace.to_html()", "shatterbox.to_html(trace)")
        >>> str(w[0].message)
        'Trace.to_html() is deprecated and goes away in the next release: use shatterbox.to_html(trace)'
    """
    import warnings

    warnings.warn(f"{old} is deprecated and goes away in the next release: use {new}",
                  ShatterboxDeprecationWarning, stacklevel=3)


class DrawnByRender:
    """Results whose drawing moved to :mod:`shatterbox.render`: their old ``to_html()`` forwards there, with a deprecation
    warning, for one release."""

    def to_html(self, **options: object) -> str:
        """Deprecated: :func:`shatterbox.to_html` draws every result."""
        deprecated(f"{type(self).__name__}.to_html()", f"shatterbox.to_html({type(self).__name__.lower()})")
        from shatterbox.render import to_html

        return to_html(self, **options)


class DrawnAndShownByRender(DrawnByRender):
    """As :class:`DrawnByRender`, for results that also had ``show()`` (the terminal drawing)."""

    def show(self, console: object = None) -> None:
        """Deprecated: :func:`shatterbox.show` prints every result."""
        deprecated(f"{type(self).__name__}.show()", f"shatterbox.show({type(self).__name__.lower()})")
        from shatterbox.render import show

        show(self, console)


def moved_names(module: str, names: dict[str, str]):
    """A module ``__getattr__`` that still serves old names for one release, with a deprecation warning:
    ``names`` maps each old name to ``"module:new name"`` (a module of the same package).

    Examples:
        >>> import warnings
        >>> getattr_ = moved_names("shatterbox.demo", {"old": "shatterbox.errors:InputError"})
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     getattr_("old").__name__, str(w[0].message).split(":")[0]
        ('InputError', 'shatterbox.demo.old is deprecated and goes away in the next release')
    """
    import importlib

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, new = names[name].split(":")
        deprecated(f"{module}.{name}", f"{where}.{new}")
        return getattr(importlib.import_module(where), new)

    return __getattr__
