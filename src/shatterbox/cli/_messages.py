"""Library messages in the command line's words: parameters become flags, warnings one line each."""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import typer

from shatterbox.cli._app import app

FLAGS = {"address": "--ray-address",  # library parameters whose flag is not --<parameter>
         "base_url": "--llm", "api_key": "--llm-key", "timeout": "--llm-timeout"}  # the chat client's (neurons explain --llm)
_SETTING = re.compile(r"(?<![\w-])([a-z][a-z0-9_]*)=('[^']*'|\"[^\"]*\"|[^\s,;)]+)")


def flag(name: str) -> str:
    """The command-line flag of library parameter ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def in_flags(message: object, parameters: "set[str] | frozenset[str] | None" = None) -> str:
    """A library message in this command's words: ``name=value`` becomes ``--name value`` (``--name`` for True)
    for the parameters this command has (``parameters``; default: the running command's), and the parameter an error
    names (``message.parameter``) becomes its flag.

    Examples:
        >>> from shatterbox.errors import InputError
        >>> in_flags(InputError("workers must be at least 1 (got 0)", parameter="workers"), {"workers"})
        '--workers must be at least 1 (got 0)'
        >>> in_flags("raise budget=1,200 or use method='sampled'", {"budget", "method"})
        'raise --budget 1,200 or use --method sampled'
    """
    text, named = str(message), getattr(message, "parameter", None)
    if parameters is None:
        parameters = _command_parameters()

    def written(match: re.Match) -> str:
        name, value = match.group(1), match.group(2).strip("'\"")
        if name not in parameters:
            return match.group(0)
        return flag(name) if value == "True" else f"{flag(name)} {value}"

    text = _SETTING.sub(written, text)
    if named and "=" not in text and flag(named) not in text:
        text = re.sub(rf"(?<![\w-]){re.escape(named)}\b", flag(named), text, count=1)
    return text


@lru_cache(maxsize=1)
def _command_parameters() -> frozenset[str]:
    """Every parameter name a command of this CLI takes (a library message may suggest a flag of another command,
    e.g. a damaged store read by ``probe`` names harvest's ``repair=True``)."""
    names, stack = set(FLAGS), [typer.main.get_command(app)]
    while stack:
        command = stack.pop()
        names.update(p.name for p in command.params)
        stack.extend(getattr(command, "commands", {}).values())
    return frozenset(names)


def shown_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """The warnings a command shows, once each, in the command's words: every warning raised while it ran
    (truncation, convergence, a model changed in place, ...) except other packages' deprecation notices.

    Examples:
        >>> w = [warnings.WarningMessage(UserWarning("max_iter=100 reached"), UserWarning, "x.py", 1)] * 2
        >>> shown_warnings(w)
        ['max_iter=100 reached']
    """
    from shatterbox.errors import ShatterboxDeprecationWarning

    found: list[str] = []
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)) or (
                issubclass(w.category, FutureWarning) and not issubclass(w.category, ShatterboxDeprecationWarning)):
            continue
        text = in_flags(" ".join(str(w.message).split()))
        if text not in found:
            found.append(text)
    return found
