"""The chat-model path against a fake OpenAI-compatible server on loopback."""

import time

import numpy as np
import pytest

from shatterbox.errors import LLMError
from shatterbox.neurons import NeuronSettings, Units, explain_units
from shatterbox.neurons._llm import ChatClient, LLMExplainer, LLMJudge, estimate
from shatterbox.neurons._offline import TokenSimulator

from tests.neurons.fake_llm import FakeLLM
from tests.neurons.test_units import on_word

SMALL = NeuronSettings(n_explain=6, n_top=6, n_random=6)


@pytest.fixture
def fake():
    servers = []

    def start(mode="ok", **kw):
        servers.append(FakeLLM(mode, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def run(store, url, tmp_path, *, out=None, client=None, **kw):
    client = client or ChatClient(url, "fake-model", cache=tmp_path / "cache", **kw)
    planted = Units.planted(store, lambda rows: np.hstack([on_word("the")(rows), on_word("of")(rows)]), count=2)
    table = explain_units(lambda l: planted, {0: [0, 1]}, out, explainer=LLMExplainer(client), simulator=TokenSimulator(),
                          judge=LLMJudge(client), settings=SMALL)
    return client, table


def test_request_shape_and_a_planted_unit_scored_by_the_judge(example_store, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("SHATTERBOX_LLM_KEY", "sk-test")
    server = fake()
    client, table = run(example_store, server.url, tmp_path)
    body = server.requests[0]
    assert body["model"] == "fake-model" and body["temperature"] == 0 and body["max_tokens"] > 0
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and "<<the>>" in body["messages"][1]["content"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    row = {r["unit"]: r for r in table.to_pylist()}[0]
    assert row["explanation"] == 'the token "the".'
    assert row["detection"] >= 0.9 and row["fuzzing"] >= 0.9 and row["correlation"] >= 0.9
    assert row["random_detection"] < 0.75
    # one explanation per unit (two units, each the other's shuffled baseline) + per unit 4 explanations x (detect + fuzz)
    assert client.usage.calls == len(server.requests) == 2 + 2 * 4 * 2


def test_the_cache_answers_a_rerun_without_calls(example_store, fake, tmp_path):
    server = fake()
    first, t1 = run(example_store, server.url, tmp_path)
    sent = len(server.requests)
    again, t2 = run(example_store, server.url, tmp_path)
    assert len(server.requests) == sent and again.usage.calls == 0 and again.usage.cached == first.usage.calls
    assert t1.column("explanation").to_pylist() == t2.column("explanation").to_pylist()


@pytest.mark.slow
def test_retries_are_bounded_and_recover(example_store, fake, tmp_path):
    flaky = fake("flaky", failures=1)
    client = ChatClient(flaky.url, "m", cache=None, retries=2)
    assert client.complete([{"role": "user", "content": "Here are the texts <<x>>"}]).startswith("Explanation")
    assert len(flaky.requests) == 2
    down = fake("down")
    with pytest.raises(LLMError, match=r"HTTP 503\) after 3 attempts: start the server"):
        ChatClient(down.url, "m", cache=None, retries=2).complete([{"role": "user", "content": "x"}])
    assert len(down.requests) == 3


@pytest.mark.slow
@pytest.mark.parametrize("mode, message", [
    ("malformed", "not an OpenAI chat completion"),
    ("slow", r"no answer within 0.5 s\) after 2 attempts: raise timeout"),
    ("unauthorised", "refused the request \\(HTTP 401\\): set \\$SHATTERBOX_LLM_KEY"),
])
def test_a_broken_endpoint_is_one_clear_error_and_nothing_is_written(example_store, fake, tmp_path, mode, message):
    server = fake(mode, delay=2.0)
    started = time.perf_counter()
    with pytest.raises(LLMError, match=message):
        run(example_store, server.url, tmp_path, out=tmp_path / "run", timeout=0.5, retries=1)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "run").exists()


def test_a_dead_endpoint(example_store, tmp_path):
    with pytest.raises(LLMError, match="connection refused"):
        run(example_store, "http://127.0.0.1:9/v1", tmp_path, retries=0)


def test_a_judge_answer_that_is_not_a_list_is_one_error(fake):
    server = fake()
    server.reply = lambda prompt: "I think the first one."
    judge = LLMJudge(ChatClient(server.url, "m", cache=None))
    from shatterbox.neurons import Excerpt
    with pytest.raises(LLMError, match="did not answer with a list of 1 zeros and ones"):
        judge.detect("x", [Excerpt(0, ["a"], np.zeros(1))])


def test_the_estimate_counts_what_a_run_sends(example_store, fake, tmp_path):
    server = fake()
    client, _ = run(example_store, server.url, tmp_path)
    est = estimate(2, example_store.n_tokens / example_store.n_sentences, SMALL.n_explain, SMALL.n_top, SMALL.n_random)
    assert est.calls == client.usage.calls  # no partner needed: the two units are each other's shuffled baseline
    sent = sum(len(m["content"]) for r in server.requests for m in r["messages"]) / 4
    assert 0.5 < est.prompt_tokens / sent < 2.0, (est.prompt_tokens, sent)


def test_the_disk_cache_is_bounded_in_bytes(fake, tmp_path):
    server = fake()
    client = ChatClient(server.url, "m", cache=tmp_path / "c", cache_bytes=100)
    for i in range(12):
        client.complete([{"role": "user", "content": f"question {i}"}])
    files = list((tmp_path / "c").glob("*/*.json"))
    assert sum(p.stat().st_size for p in files) <= 100 and 0 < len(files) < 12  # the oldest answers went first
    again = ChatClient(server.url, "m", cache=tmp_path / "c", cache_bytes=100)
    again.complete([{"role": "user", "content": "question 11"}])
    assert again.usage.cached == 1 and again.usage.calls == 0  # the newest answer was kept
