"""Lenses against oracles: the model's own logits at the last layer, a hand computation of norm + unembedding + soft cap
at every layer, the classifier's own output, a planted rotation the tuned lens must undo, and a training run killed with
SIGKILL that resumes to the same translators."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import transformers as tf

import shatterbox as sb
from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.lens import Readout, TunedLens, classifier_lens, logit_lens, readout
from shatterbox.store import harvest
from tests.conftest import GEMMA_SMALL, gpt2_tokenizer

TEXT = "hello world, this is a tiny corpus"


def _gemma2_capped() -> sb.LoadedModel:
    """A tiny Gemma 2 (final logit soft cap 30) whose embeddings are scaled up so that the cap bends most logits."""
    torch.manual_seed(0)
    model = tf.Gemma2ForCausalLM(tf.Gemma2Config(**GEMMA_SMALL, num_key_value_heads=2, final_logit_softcapping=30.0)).eval()
    with torch.no_grad():
        model.model.norm.weight.fill_(3.0)
        model.lm_head.weight.mul_(40.0)
    return sb.wrap(model, gpt2_tokenizer(), name="tiny-gemma2-capped")


@pytest.fixture(scope="module")
def capped() -> sb.LoadedModel:
    return _gemma2_capped()


@torch.no_grad()
def _hand_logits(model: sb.LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
    """Gemma's RMSNorm (x / rms * (1 + w)), the tied unembedding and the soft cap, written out."""
    norm = model.model.model.norm
    x = hidden.detach().double()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.eps) * (1.0 + norm.weight.double())
    z = x @ model.model.lm_head.weight.detach().double().T
    return 30.0 * torch.tanh(z / 30.0)


def test_the_soft_cap_is_read_and_bends_the_logits(capped):
    head = readout(capped)
    assert head.cap == 30.0
    ids = capped.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        raw = capped.model.lm_head(capped.model.model(ids).last_hidden_state)
    assert float(raw.abs().max()) > 60  # beyond the cap: tanh changes these logits by more than a rounding error


def test_the_lens_at_every_layer_is_norm_unembedding_and_soft_cap_by_hand(capped):
    r = logit_lens(capped, TEXT, k=3)
    ids = capped.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = capped.model(ids, output_hidden_states=True)
    final = torch.log_softmax(out.logits[0].detach().double(), -1)
    for h in r.layers[:-1]:  # hidden_states[h < n] are block outputs before the final norm
        logp = torch.log_softmax(_hand_logits(capped, out.hidden_states[h][0]), -1)
        top = logp.topk(3, dim=-1)
        assert np.allclose([[p for _, p in cell] for cell in r.top[r.layers.index(h)]], top.values.exp().numpy(), atol=1e-5)
        shown = [[t for t, _ in cell] for cell in r.top[r.layers.index(h)]]
        assert shown == [capped.tokenizer.convert_ids_to_tokens(row) for row in top.indices.tolist()]
        kl = (final.exp() * (final - logp)).sum(-1).numpy()
        assert np.allclose(r.kl[r.layers.index(h)], kl, atol=1e-4, rtol=1e-4)
        rank = (logp > logp.gather(-1, final.argmax(-1, keepdim=True))).sum(-1).numpy()
        assert (r.rank[r.layers.index(h)] == rank).all()


@pytest.mark.parametrize("name", ["gpt2", "llama-gqa", "gemma3-window", "gemma2-softcap"])
def test_the_lens_at_the_last_layer_is_the_models_own_logits(tiny_models, name):
    model = tiny_models[name]
    ids = model.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode(), sb.patching.collecting(model, [sb.patching.Site("hidden", model.n_layers)]) as found:
        logits = model.model(ids).logits[0]
        lens = readout(model).logits(found[sb.patching.Site("hidden", model.n_layers)][0])
    assert float((lens - logits).abs().max()) <= 1e-5
    r = logit_lens(model, TEXT)
    assert (r.rank[-1] == 0).all() and float(r.kl[-1].max()) <= 1e-6 and not r.notes


def test_the_capped_models_last_layer_too(capped):
    r = logit_lens(capped, TEXT)
    assert (r.rank[-1] == 0).all() and float(r.kl[-1].max()) <= 1e-6 and float(r.kl[0].mean()) > 0.1


@pytest.mark.slow
@pytest.mark.decoder
def test_gemma_logit_lens(gemma):
    r = logit_lens(gemma, "The capital of France is")
    assert float(r.kl[-1].max()) <= 1e-5 and (r.rank[-1] == 0).all()
    assert r.mean_kl[1] > r.mean_kl[-2] > 0  # early layers are further from the final distribution than late ones
    assert [r.top[h][-1][0][0] for h in (13, 16, 17)] == ["▁Paris"] * 3 and r.predicted[-1] == "▁the"  # formed, then deferred
    assert r.to_json()  # strict JSON
    assert r.to_csv().count("\n") == 1 + len(r.layers) * len(r.tokens)


def test_the_classifier_lens_at_the_last_layer_is_the_classifiers_output_and_each_layer_by_hand():
    from shatterbox.classifiers import mean_pool
    from shatterbox.classifiers.sentiment import sentiment

    clf = sentiment()
    text = "The film was not bad at all."
    r = classifier_lens(clf, text)
    assert np.allclose(r.probs[-1], clf.predict([text])[0], atol=1e-5) and r.kl[-1] <= 1e-6
    assert r.predicted == ["negative"] * 3 + ["positive"] * 4 and np.round(r.probs[3:, 1], 2).tolist() == [0.52, 0.81, 0.92, 0.99]  # docs/lens.md
    inputs = clf.tokenizer([text], return_tensors="pt")
    with torch.inference_mode():
        states = clf.model.model(**inputs, output_hidden_states=True).hidden_states
        by_hand = [torch.softmax(clf.head(mean_pool(s, inputs["attention_mask"])), -1)[0].numpy() for s in states]
    assert np.allclose(r.probs, np.stack(by_hand), atol=1e-5)
    assert r.to_csv().splitlines()[0] == "layer,predicted,p(negative),p(positive),kl"


def test_lens_bad_input_is_one_message(default_model):
    with pytest.raises(InputError, match="has no language-model head: the logit lens needs a decoder"):
        logit_lens(default_model, TEXT)
    with pytest.raises(InputError, match="k=0 is out of range"):
        logit_lens(default_model, TEXT, k=0)
    from shatterbox.classifiers import from_model

    bert = tf.BertForSequenceClassification(tf.BertConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=48))
    with pytest.raises(InputError, match="reads a pooled head"):
        classifier_lens(from_model(sb.wrap(bert, default_model.tokenizer, name="tiny-classifier")), TEXT)


# --- tuned lens --------------------------------------------------------------------------------------------------

def _planted(seed: int = 0, n: int = 1200) -> tuple[dict[int, np.ndarray], Readout]:
    """Final states x, and an earlier layer holding a rotated copy x R: the logit lens reads the rotated copy as noise,
    a translator can undo R exactly."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = Readout(torch.nn.LayerNorm(16, elementwise_affine=False), torch.nn.Linear(16, 50, bias=False))
    with torch.no_grad():
        head.head.weight.mul_(8.0)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    rotation = np.linalg.qr(rng.standard_normal((16, 16)))[0].astype(np.float32)
    return {0: x @ rotation, 1: x}, head


def test_the_tuned_lens_undoes_a_planted_rotation_on_held_out_states():
    hidden, head = _planted()
    train = {h: x[:1000] for h, x in hidden.items()}
    held = {h: x[1000:] for h, x in hidden.items()}
    lens = TunedLens(epochs=30, learning_rate=1e-2, batch_tokens=100).fit_arrays(train, head)
    rows = lens.score_arrays(held, head)
    assert rows[1]["tuned_kl"] == 0.0 and rows[1]["logit_kl"] == 0.0  # the last layer's translator is the identity
    assert rows[0]["logit_kl"] > 1.0  # the rotated copy is unreadable by the logit lens ...
    assert rows[0]["tuned_kl"] < rows[0]["logit_kl"] / 10  # ... and readable through the trained translator
    assert rows[0]["tuned_top1"] > 0.8 > rows[0]["logit_top1"]
    assert lens.history_[-1] < lens.history_[0]


def test_an_untrained_translator_is_the_logit_lens():
    hidden, head = _planted()
    lens = TunedLens(epochs=1, learning_rate=1e-6, batch_tokens=1000).fit_arrays({h: x[:1000] for h, x in hidden.items()}, head)
    row = lens.score_arrays({h: x[1000:] for h, x in hidden.items()}, head)[0]
    assert abs(row["tuned_kl"] - row["logit_kl"]) < 0.05 * row["logit_kl"]


@pytest.fixture(scope="module")
def llama_store(tmp_path_factory, tiny_models):
    model = tiny_models["llama-gqa"]
    out = tmp_path_factory.mktemp("lens") / "store"
    return harvest(load_corpus("wordnet", limit=150, seed=3), out, model=model, layers="all", what="hidden"), model


def test_a_tuned_lens_fitted_on_a_store_is_saved_loaded_and_read_through(llama_store, tmp_path, default_model):
    store, model = llama_store
    lens = TunedLens(epochs=3, learning_rate=3e-3, batch_tokens=64, seed=1).fit(store, model)
    assert lens.n_train_ > 500 and lens.n_held_ > 20
    scores = {r["layer"]: r for r in lens.scores_}
    assert scores[model.n_layers]["tuned_kl"] == 0.0
    assert all(scores[h]["tuned_kl"] < scores[h]["logit_kl"] for h in range(model.n_layers))  # held-out sentences
    path = lens.save(store.root / "tuned-lens.safetensors")
    again = TunedLens.load(path)
    assert again.scores_ == lens.scores_ and all(torch.equal(again.weight_[h], lens.weight_[h]) for h in lens.layers_)
    r = logit_lens(model, TEXT, tuned=again)
    assert r.lens == "tuned" and float(r.kl[-1].max()) <= 1e-6
    with pytest.raises(InputError, match="this tuned lens was trained for"):
        logit_lens(tiny_models_other(), TEXT, tuned=again)


def tiny_models_other() -> sb.LoadedModel:
    torch.manual_seed(5)
    return sb.wrap(tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                      intermediate_size=48, vocab_size=400, max_position_embeddings=64)), gpt2_tokenizer(),
                   name="other-llama")


def test_tuned_lens_bad_input_is_one_message(tmp_path, default_model):
    with pytest.raises(InputError, match="no tuned lens at"):
        TunedLens.load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="is not a safetensors file"):
        TunedLens.load(tmp_path / "junk.safetensors")
    with pytest.raises(InputError, match="learning_rate=nan is out of range"):
        TunedLens(learning_rate=float("nan"))
    with pytest.raises(InputError, match="not fitted yet"):
        TunedLens().translate(torch.zeros(3), 0)
    store = harvest(load_corpus("wordnet", limit=5), tmp_path / "enc", layers="all")
    with pytest.raises(InputError, match="has no language-model head"):
        TunedLens().fit(store)


RESUME = textwrap.dedent("""
    import sys, numpy as np, torch
    sys.path.insert(0, {root!r})
    from tests.lens.test_lens import _planted
    from shatterbox.lens import TunedLens, _tuned
    _tuned.CHECKPOINT_SECONDS = 0.0
    hidden, head = _planted()
    lens = TunedLens(epochs=40, learning_rate=1e-2, batch_tokens=50).fit_arrays(hidden, head, checkpoint=sys.argv[1],
                                                                               progress=lambda d, t: print(d, flush=True))
""")


@pytest.mark.slow
def test_a_killed_fit_resumes_from_its_checkpoint_to_the_same_translators(tmp_path):
    checkpoint = tmp_path / "lens.partial.safetensors"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "fit.py"
    script.write_text(RESUME.format(root=root))
    proc = subprocess.Popen([sys.executable, str(script), str(checkpoint)], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:  # kill it in the middle of training, with a checkpoint written
        if int(line) >= 300 and checkpoint.exists():
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and checkpoint.exists()
    from safetensors import safe_open

    with safe_open(str(checkpoint), "pt") as f:
        resumed_from = int(f.metadata()["step"])
    assert 0 < resumed_from < 40 * 24
    hidden, head = _planted()
    steps = []
    resumed = TunedLens(epochs=40, learning_rate=1e-2, batch_tokens=50).fit_arrays(hidden, head, checkpoint=checkpoint,
                                                                                   progress=lambda d, t: steps.append(d))
    assert steps[0] == resumed_from + 1 and not checkpoint.exists()
    whole = TunedLens(epochs=40, learning_rate=1e-2, batch_tokens=50).fit_arrays(hidden, head)
    assert torch.allclose(resumed.weight_[0], whole.weight_[0], atol=1e-6) and torch.allclose(resumed.bias_[0], whole.bias_[0], atol=1e-6)
