"""SAE files move between tools: SAELens and sparsify SAEs trained here, Gemma Scope layouts written here, read by
shatterbox with the same codes and reconstructions; ours loaded by SAELens with the same; bad files named."""

import json

import numpy as np
import pytest
import torch

from shatterbox.errors import InputError
from shatterbox.factors import SparseAutoencoder, fit_factors
from shatterbox.sae import read_sae, sae_factors, save_saelens
from shatterbox.corpus import Corpus
from shatterbox.store import harvest
from tests.conftest import CORPUS

D, WIDTH, K = 16, 48, 4


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    atoms = torch.randn(WIDTH, D, generator=g)
    codes = torch.relu(torch.randn(2048, WIDTH, generator=g)) * (torch.rand(2048, WIDTH, generator=g) < 0.08)
    return codes @ atoms + 0.5


def _train(module: torch.nn.Module, step, data: torch.Tensor, steps: int = 60) -> None:
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    for i in range(steps):
        batch = data[(i * 128) % len(data):][:128]
        optimizer.zero_grad()
        step(batch, i).backward()
        optimizer.step()


def test_an_sae_trained_by_saelens_reads_with_its_codes_and_reconstructions(data, tmp_path):
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens import SAE

    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D, d_sae=WIDTH, k=K))
    _train(sae, lambda b, i: sae.training_forward_pass(TrainStepInput(b, {}, None, i, False)).loss, data)
    sae.cfg.metadata.hook_name, sae.cfg.metadata.model_name = "blocks.2.hook_resid_post", "google/gemma-3-270m"
    sae.save_inference_model(tmp_path / "saelens")
    reference = SAE.load_from_disk(tmp_path / "saelens")
    f = read_sae(tmp_path / "saelens")
    assert (f.format, f.layer, f.model.activation, f.model.k, f.model_name) == ("saelens", 3, "topk", K, "google/gemma-3-270m")
    with torch.no_grad():
        codes = reference.encode(data[:300])
        recon = reference.decode(codes)
    ours = f.model.transform(data[:300].numpy())
    assert (codes > 0).sum(1).float().mean() > 1  # a real TopK SAE, not a silent one
    np.testing.assert_allclose(ours, codes.numpy(), atol=1e-5)
    np.testing.assert_allclose(f.model.inverse_transform(ours), recon.numpy(), atol=1e-5)


def test_an_sae_trained_by_sparsify_reads_with_its_codes_and_reconstructions(data, tmp_path):
    from sparsify import SparseCoder, SparseCoderConfig

    coder = SparseCoder(D, SparseCoderConfig(k=K, num_latents=WIDTH))
    _train(coder, lambda b, i: coder(b).fvu + coder(b).auxk_loss, data)
    coder.save_to_disk(tmp_path / "run" / "layers.4")
    f = read_sae(tmp_path / "run" / "layers.4")
    assert (f.format, f.layer, f.model.k) == ("sparsify", 5, K)
    with torch.no_grad():
        out = coder.encode(data[:300])
        dense = torch.zeros(300, WIDTH).scatter(1, out.top_indices, out.top_acts)
        recon = coder.decode(out.top_acts, out.top_indices)
    ours = f.model.transform(data[:300].numpy())
    np.testing.assert_allclose(ours, dense.numpy(), atol=1e-5)
    np.testing.assert_allclose(f.model.inverse_transform(ours), recon.numpy(), atol=1e-5)
    with pytest.raises(InputError, match="one SAE per place .*layers.4.*give one of those folders"):
        read_sae(tmp_path / "run")


@pytest.mark.parametrize("layout", ["npz", "safetensors"])
def test_a_gemma_scope_jumprelu_file_gives_the_hand_computed_codes(tmp_path, layout):
    rng = np.random.default_rng(1)
    w_enc, w_dec = rng.normal(size=(D, WIDTH)).astype(np.float32), rng.normal(size=(WIDTH, D)).astype(np.float32)
    b_enc, b_dec, threshold = rng.normal(size=WIDTH).astype(np.float32), rng.normal(size=D).astype(np.float32), np.abs(rng.normal(size=WIDTH)).astype(np.float32)
    folder = tmp_path / "resid_post" / "layer_6_width_16k_l0_small"
    folder.mkdir(parents=True)
    if layout == "npz":
        np.savez(folder / "params.npz", W_enc=w_enc, W_dec=w_dec, b_enc=b_enc, b_dec=b_dec, threshold=threshold)
    else:
        from safetensors.numpy import save_file

        save_file({"w_enc": w_enc, "w_dec": w_dec, "b_enc": b_enc, "b_dec": b_dec, "threshold": threshold}, str(folder / "params.safetensors"))
        (folder / "config.json").write_text(json.dumps({"architecture": "jump_relu", "model_name": "gemma-v3-270m-pt"}))
    f = read_sae(folder)
    x = rng.normal(size=(50, D)).astype(np.float32)
    pre = x @ w_enc + b_enc  # Gemma Scope does not subtract b_dec before encoding
    by_hand = np.where(pre > threshold, pre, 0)
    assert (f.format, f.layer, f.model.activation) == ("gemmascope", 7, "jumprelu")
    assert 0 < (by_hand > 0).mean() < 1
    np.testing.assert_allclose(f.model.transform(x), by_hand, atol=1e-5)
    np.testing.assert_allclose(f.model.inverse_transform(by_hand), by_hand @ w_dec + b_dec, atol=1e-4)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "relu"])
def test_ours_saved_for_saelens_loads_there_with_the_same_codes(activation, tmp_path, data):
    from sae_lens import SAE

    x = data.numpy()
    sae = SparseAutoencoder(n_factors=WIDTH, k=K, activation=activation, n_epochs=2, batch_size=256).fit(x)
    save_saelens(sae, tmp_path / "ours", layer=3, model_name="gemma-3-270m")
    loaded = SAE.load_from_disk(tmp_path / "ours")
    assert loaded.cfg.metadata.hook_name == "blocks.2.hook_resid_post" and loaded.cfg.metadata.model_name == "google/gemma-3-270m"
    with torch.no_grad():
        codes = loaded.encode(data[:300]).numpy()
        recon = loaded.decode(torch.from_numpy(codes)).numpy()
    ours = sae.transform(x[:300])
    assert (ours > 0).sum(1).mean() > 1  # not a silent SAE
    np.testing.assert_allclose(codes, ours, atol=1e-5)
    np.testing.assert_allclose(recon, sae.inverse_transform(ours), atol=1e-4)


def test_store_factors_are_saved_with_their_normalisation_folded_in(default_model, tmp_path):
    from sae_lens import SAE

    store = harvest(Corpus.from_texts(CORPUS[:40]), tmp_path / "store", layers="2")
    factors = fit_factors(store, kind="sae", n_factors=64, k=8, n_epochs=2, max_tokens=2000)
    loaded = SAE.load_from_disk(save_saelens(factors, tmp_path / "sae"))
    raw = store.activations("hidden_2")[:200]
    with torch.no_grad():
        codes = loaded.encode(torch.from_numpy(raw)).numpy()
        recon = loaded.decode(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(codes, factors.codes(raw, 2), atol=1e-4)
    np.testing.assert_allclose(recon, factors.reconstruct(raw, 2), atol=1e-3)
    again = sae_factors(tmp_path / "sae", store)  # and read back as factors of the same store: the same fit report
    assert again.reports[2].variance_explained == pytest.approx(factors.reports[2].variance_explained, abs=0.02)
    assert again.reports[2].mean_l0 == pytest.approx(8, abs=0.01)


def test_bad_sae_files_get_one_message_naming_the_fix(default_model, tmp_path):
    with pytest.raises(InputError, match="no SAE at .*give a SAELens folder"):
        read_sae(tmp_path / "missing")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="holds no SAE shatterbox reads"):
        read_sae(tmp_path / "notes")
    with pytest.raises(InputError, match="unknown SAE format 'onnx'"):
        read_sae(tmp_path / "notes", format="onnx")
    folder = tmp_path / "gemma-scope-2b-pt-res" / "layer_3"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "params.npz", W_enc=rng.normal(size=(384, 8)), W_dec=rng.normal(size=(8, 384)), b_enc=np.zeros(8), b_dec=np.zeros(384))
    with pytest.raises(InputError, match="JumpReLU SAE without its threshold"):
        read_sae(folder)
    np.savez(folder / "params.npz", W_enc=rng.normal(size=(16, 8)), W_dec=rng.normal(size=(8, 16)), b_enc=np.zeros(8), b_dec=np.zeros(16), threshold=np.ones(8))
    store = harvest(Corpus.from_texts(CORPUS[:8]), tmp_path / "store", layers="4")
    with pytest.raises(InputError, match="reads 16-dimensional vectors but the store's hidden states have 384"):
        sae_factors(folder, store)
    sae = SparseAutoencoder(n_factors=8, k=2, n_epochs=1).fit(rng.normal(size=(64, 384)).astype(np.float32))
    with pytest.raises(InputError, match="trained on 'google/gemma-3-270m' but the store holds 'default'"):
        sae_factors(save_saelens(sae, tmp_path / "g", layer=4, model_name="gemma-3-270m"), store)
    with pytest.raises(InputError, match="reads hidden state 2 .*store has hidden layers \\[4\\].*--layers 2"):
        sae_factors(save_saelens(sae, tmp_path / "d", layer=2, model_name="default"), store)
    with pytest.raises(InputError, match="does not say which layer"):
        sae_factors(save_saelens(sae, tmp_path / "n", model_name="default"), store)


def test_an_imported_sae_is_factors_every_analysis_takes(default_model, tmp_path):
    from shatterbox.neurons import NeuronSettings, Units, explain_unit
    from shatterbox.patching import factor_atom
    from shatterbox.steering import factor_direction

    from shatterbox.corpus import load_corpus

    store = harvest(load_corpus("wordnet", limit=60), tmp_path / "store", layers="3")
    rng = np.random.default_rng(0)
    w_enc = rng.normal(size=(384, 32)).astype(np.float32)
    folder = tmp_path / "sae"
    folder.mkdir()
    np.savez(folder / "params.npz", W_enc=w_enc, W_dec=np.ascontiguousarray(w_enc.T), b_enc=np.zeros(32, np.float32),
             b_dec=np.zeros(384, np.float32), threshold=np.full(32, 0.5, np.float32))
    factors = sae_factors(folder, store, layer=3)
    factors.save(tmp_path / "imported.safetensors")
    again = type(factors).load(tmp_path / "imported.safetensors")
    hidden = store.activations("hidden_3")[:20]
    pre = hidden @ w_enc
    np.testing.assert_allclose(again.codes(hidden, 3), np.where(pre > 0.5, pre, 0), rtol=1e-4, atol=1e-3)  # the file's own rule
    top = store.top_rows("hidden_3", 7, 3, transform=lambda h: again.codes(h, 3, units=[7]))  # what `factors show` reads
    assert len(top) == 3
    np.testing.assert_allclose(factor_atom(again, 7, 3).numpy(), w_enc[:, 7], rtol=1e-5)  # ablation and steering read its decoder row
    assert factor_direction(again, 7, 3).name == "factor 7"
    explained = explain_unit(Units.factors(store, again, 3), 7, settings=NeuronSettings(n_explain=3, n_top=3, n_random=3))
    assert explained["unit"] == 7 and explained["explanation"]
