"""Explainer and judge through any OpenAI-compatible chat endpoint (a hosted API, llama.cpp's server, Ollama, vLLM):
bounded retries, one clear error for a dead, slow or malformed endpoint, and a disk cache so a re-run costs nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from shatterbox.trace import glue
from shatterbox.errors import LLMError
from shatterbox.neurons._scoring import discretise
from shatterbox.neurons._units import Excerpt, Records

CACHE_BYTES = 256 << 20
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English with GPT-style tokenizers; estimates only
KEY_VARIABLES = ("SHATTERBOX_LLM_KEY", "OPENAI_API_KEY")
_LIST = re.compile(r"\[[\s\d,]*\]")


def cache_dir() -> Path:
    """Where shatterbox keeps its caches: ``$SHATTERBOX_CACHE`` or ``~/.cache/shatterbox``."""
    return Path(os.environ.get("SHATTERBOX_CACHE") or Path.home() / ".cache" / "shatterbox")


def text_of(tokens: Sequence[str], marks: np.ndarray | None = None) -> str:
    """Word pieces joined into text (``##`` pieces glued to the previous one; with ``▁``/``Ġ`` word-start markers,
    unmarked pieces glued), tokens in ``marks`` as ``<<token>>``.

    Examples:
        >>> text_of(["the", "river", "bank", "##s", "."], np.array([0, 0, 1, 1, 0], bool))
        'the river <<bank>><<s>> .'
        >>> text_of(["the", "\u2581river", "\u2581bank", "s"])
        'the river banks'
    """
    return "".join(space + (f"<<{piece}>>" if marks is not None and marks[i] else piece)
                   for i, (space, piece) in enumerate(glue(tokens)))


@dataclass
class Usage:
    """Calls and tokens a run made (or would make): ``calls`` sent, ``cached`` answered from the cache."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatClient:
    """A minimal OpenAI-compatible chat client (``POST {base_url}/chat/completions``) with a disk cache.

    The key comes from ``api_key``, else ``$SHATTERBOX_LLM_KEY``, else ``$OPENAI_API_KEY`` (a local server needs
    none). Each request is retried at most ``retries`` times on a connection failure, a timeout, HTTP 429 or
    5xx; every other failure is one :class:`LLMError` naming the endpoint and the fix. Answers are cached by
    (endpoint, model, request) under ``cache`` (bounded to ``cache_bytes``; ``None`` turns it off).

    Examples:
        >>> ChatClient("http://127.0.0.1:9/v1", "m", retries=0, timeout=1, cache=None).complete([{"role": "user", "content": "hi"}])
        Traceback (most recent call last):
        ...
        shatterbox.errors.LLMError: cannot reach the chat endpoint http://127.0.0.1:9/v1/chat/completions (connection refused) after 1 attempt: start the server, or give the right base_url
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 60.0, retries: int = 2,
                 cache: str | Path | None = "default", cache_bytes: int = CACHE_BYTES, max_tokens: int = 256) -> None:
        if not re.match(r"^https?://", base_url or ""):
            raise LLMError(f"the chat endpoint {base_url!r} is not an http(s) URL: give e.g. base_url=http://127.0.0.1:8080/v1", parameter="base_url")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries, self.max_tokens = model, float(timeout), int(retries), int(max_tokens)
        self.api_key = api_key or next((os.environ[k] for k in KEY_VARIABLES if os.environ.get(k)), None)
        self.cache = None if cache is None else (cache_dir() / "llm" if cache == "default" else Path(cache))
        self.cache_bytes = int(cache_bytes)
        self._cached_bytes: int | None = None  # bytes in the cache folder, once listed
        self.usage = Usage()

    @property
    def name(self) -> str:
        """``model@endpoint``."""
        return f"{self.model}@{self.url.removesuffix('/chat/completions')}"

    def complete(self, messages: list[dict], *, max_tokens: int | None = None) -> str:
        """The assistant's answer to ``messages`` (temperature 0), from the cache when asked before."""
        body = {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": max_tokens or self.max_tokens}
        key = hashlib.sha256(json.dumps([self.url, body], sort_keys=True).encode()).hexdigest()
        cached = self._cache_get(key)
        if cached is not None:
            self.usage.cached += 1
            return cached
        answer = self._post(body)
        self.usage.calls += 1
        self.usage.prompt_tokens += sum(len(m["content"]) for m in messages) // CHARS_PER_TOKEN
        self.usage.completion_tokens += len(answer) // CHARS_PER_TOKEN
        self._cache_put(key, answer)
        return answer

    def _post(self, body: dict) -> str:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url, data=data, headers=headers), timeout=self.timeout) as reply:
                    raw = reply.read()
                return self._content(raw)
            except urllib.error.HTTPError as exc:
                if exc.code in (401, 403):
                    raise LLMError(f"the chat endpoint {self.url} refused the request (HTTP {exc.code}): set $SHATTERBOX_LLM_KEY or api_key", parameter="api_key") from None
                if exc.code == 404:
                    raise LLMError(f"the chat endpoint {self.url} does not exist (HTTP 404): give the base URL that ends before /chat/completions, e.g. http://127.0.0.1:8080/v1") from None
                if exc.code != 429 and exc.code < 500:
                    raise LLMError(f"the chat endpoint {self.url} rejected the request (HTTP {exc.code}: {_short(exc.read())}): check the chat model's name") from None
                problem = f"HTTP {exc.code}"
            except (socket.timeout, TimeoutError):
                problem = f"no answer within {self.timeout:g} s"
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (socket.timeout, TimeoutError)):
                    problem = f"no answer within {self.timeout:g} s"
                else:
                    problem = "connection refused" if isinstance(reason, ConnectionRefusedError) else str(reason)
            except (ConnectionError, OSError) as exc:
                problem = str(exc) or type(exc).__name__
        attempts = self.retries + 1
        fix = "raise timeout, or use a faster model" if problem.startswith("no answer") else "start the server, or give the right base_url"
        raise LLMError(f"cannot reach the chat endpoint {self.url} ({problem}) after {attempts} attempt{'s' if attempts > 1 else ''}: {fix}",
                       parameter="timeout" if problem.startswith("no answer") else "base_url")

    def _content(self, raw: bytes) -> str:
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"the chat endpoint {self.url} answered something that is not an OpenAI chat completion ({_short(raw)}): "
                           "point base_url at an OpenAI-compatible server (…/v1)", parameter="base_url") from None
        if not isinstance(content, str):
            raise LLMError(f"the chat endpoint {self.url} answered without text content ({_short(raw)})")
        return content

    # --- the disk cache --------------------------------------------------------------------------
    def _cache_path(self, key: str) -> Path | None:
        return None if self.cache is None else self.cache / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> str | None:
        path = self._cache_path(key)
        try:
            return None if path is None else json.loads(path.read_text())["answer"]
        except (OSError, ValueError, KeyError):
            return None

    def _cache_put(self, key: str, answer: str) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"answer": answer}))
        os.replace(tmp, path)
        if self._cached_bytes is None:  # the folder is listed once; afterwards each answer adds its size
            self._cached_bytes = sum(p.stat().st_size for p in self.cache.glob("*/*.json"))
        else:
            self._cached_bytes += path.stat().st_size
        if self._cached_bytes > self.cache_bytes:
            self._trim()

    def _trim(self) -> None:
        """Delete the oldest answers while the cache holds more than ``cache_bytes``."""
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.cache.glob("*/*.json")]
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.cache_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
        self._cached_bytes = total


def _short(raw: bytes | str, limit: int = 120) -> str:
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


# --- prompts -------------------------------------------------------------------------------------
SYSTEM = ("You study one unit (a neuron or a learned feature) of a language model. It responds to some pattern in text. "
          "Answer briefly and exactly in the format asked.")


def explain_prompt(records: Records) -> list[dict]:
    """The explainer's messages: the explainer's top excerpts with the tokens where the unit fires marked, and each
    marked token's level (0–10)."""
    lines = []
    for i, e in enumerate(records.explain_top, 1):
        levels = discretise(e.activations, records.maximum)
        marks = levels >= 1
        listed = ", ".join(f"{t.removeprefix('##')} ({int(v)})" for t, v in zip(e.tokens, levels) if v >= 1)
        lines.append(f"Example {i}: {text_of(e.tokens, marks)}\nLevels: {listed}")
    task = ("Here are the texts where the unit fires most. Tokens where it fires are marked <<like this>>, with their level "
            "from 0 to 10 listed below each text.\n\n" + "\n\n".join(lines) +
            "\n\nIn one short sentence, what does the unit respond to? Quote the exact tokens in double quotes when it is about "
            "specific tokens. Answer as: Explanation: ...")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def detect_prompt(explanation: str, excerpts: Sequence[Excerpt]) -> list[dict]:
    """The detection judge's messages: the explanation and numbered texts; answer a list of 0/1 (fires or not)."""
    texts = "\n".join(f"{i}. {text_of(e.tokens)}" for i, e in enumerate(excerpts, 1))
    task = (f"Explanation of the unit: {explanation}\n\nFor each text below, does the unit fire on it (1) or not (0)?\n\n{texts}\n\n"
            f"Answer with a JSON list of {len(excerpts)} numbers (0 or 1), nothing else.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def fuzz_prompt(explanation: str, excerpts: Sequence[Excerpt], highlights: Sequence[np.ndarray]) -> list[dict]:
    """The fuzzing judge's messages: numbered texts with tokens marked; answer whether each marking fits the explanation."""
    texts = "\n".join(f"{i}. {text_of(e.tokens, h)}" for i, (e, h) in enumerate(zip(excerpts, highlights), 1))
    task = (f"Explanation of the unit: {explanation}\n\nIn each text below some tokens are marked <<like this>>. Are the marked "
            f"tokens the ones the explanation describes (1) or not (0)?\n\n{texts}\n\n"
            f"Answer with a JSON list of {len(excerpts)} numbers (0 or 1), nothing else.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def parse_explanation(answer: str) -> str:
    """The explanation in an explainer's answer: after ``Explanation:``, first line, at most 300 characters.

    Examples:
        >>> parse_explanation("Sure.\\nExplanation: the word \\"bank\\" as a place.\\nMore.")
        'the word "bank" as a place.'
    """
    found = re.search(r"explanation\s*:\s*(.+)", answer, flags=re.IGNORECASE)
    text = (found.group(1) if found else answer).strip().splitlines()
    return (text[0].strip() if text else "")[:300] or "no explanation"


def parse_flags(answer: str, n: int, url: str) -> np.ndarray:
    """The list of ``n`` 0/1 answers in a judge's reply, or one :class:`LLMError`.

    Examples:
        >>> parse_flags("Here: [1, 0, 1]", 3, "u").tolist()
        [True, False, True]
    """
    found = _LIST.search(answer)
    try:
        values = json.loads(found.group(0)) if found else None
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != n or any(v not in (0, 1) for v in values):
        raise LLMError(f"the chat endpoint {url} did not answer with a list of {n} zeros and ones ({_short(answer)}): use a model that follows instructions")
    return np.array(values, dtype=bool)


class LLMExplainer:
    """Explanations written by a chat model from the explainer's top excerpts.

    Examples:
        >>> LLMExplainer(ChatClient("http://127.0.0.1:9/v1", "m", cache=None)).name
        'm@http://127.0.0.1:9/v1'
    """

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.name = client.name

    def explain(self, records: Records) -> str:
        """One explanation (one call, or none when cached)."""
        return parse_explanation(self.client.complete(explain_prompt(records), max_tokens=120))


class LLMJudge:
    """Detection and fuzzing answered by a chat model: one call per question per explanation."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.name = client.name

    def detect(self, explanation: str, excerpts: Sequence[Excerpt]) -> np.ndarray:
        """Whether each excerpt fires, as the model judges from the explanation."""
        answer = self.client.complete(detect_prompt(explanation, excerpts), max_tokens=8 + 3 * len(excerpts))
        return parse_flags(answer, len(excerpts), self.client.url)

    def fuzz(self, explanation: str, excerpts: Sequence[Excerpt], highlights: Sequence[np.ndarray]) -> np.ndarray:
        """Whether each highlighting fits the explanation, as the model judges."""
        answer = self.client.complete(fuzz_prompt(explanation, excerpts, highlights), max_tokens=8 + 3 * len(excerpts))
        return parse_flags(answer, len(excerpts), self.client.url)


def estimate(n_units: int, tokens_per_excerpt: float, n_explain: int, n_top: int, n_random: int) -> Usage:
    """Calls and tokens a chat-model run over ``n_units`` units would cost (before any cache): per unit one explanation
    and, for it and its three baselines, a detection and a fuzzing call.

    Examples:
        >>> estimate(10, 12.0, 10, 10, 10).calls
        90
    """
    chars_per_token = 5.5  # a word piece of English text with its space, measured on WordNet examples
    excerpt = tokens_per_excerpt * chars_per_token
    explain = len(SYSTEM) + 400 + n_explain * excerpt * 2.0  # the text, and its marked tokens listed with levels
    detect = len(SYSTEM) + 250 + (n_top + n_random) * (excerpt + 5)
    fuzz = len(SYSTEM) + 300 + 2 * n_top * (excerpt + 12)
    per_unit_prompt = explain + 4 * (detect + fuzz)
    per_unit_completion = 120 + 4 * (3 * (n_top + n_random) + 6 * n_top)
    return Usage(calls=9 * n_units, prompt_tokens=int(n_units * per_unit_prompt / CHARS_PER_TOKEN),
                 completion_tokens=int(n_units * per_unit_completion / CHARS_PER_TOKEN))
