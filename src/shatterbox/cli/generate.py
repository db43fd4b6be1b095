"""`shatterbox generate` (why a decoder wrote each token) and `shatterbox cache` (the dequantised decoders)."""

from __future__ import annotations

import threading
from enum import Enum
from typing import Optional

import typer
from shatterbox.cli._common import _emit_result, _friendly_errors, _say, app
from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.options import GenerationOptions, typer_option


class GenerateFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


@app.command(epilog=PROGRESS_HELP)
def generate(
    prompt: str = typer.Argument(..., help="The prompt to continue."),
    model: str = typer.Option("gemma-3-270m", "--model", "-m", help="A decoder: gemma-3-270m (the decoder extra), a .gguf file, or a Hugging Face causal LM name or folder."),
    max_new_tokens: int = typer_option(GenerationOptions, "max_new_tokens", "--max-new-tokens", "-n"),
    continuation: Optional[str] = typer.Option(None, "--continuation", help="Explain this continuation instead of generating one (include its leading space)."),
    method: str = typer_option(GenerationOptions, "method"),
    contrast: Optional[str] = typer.Option(None, "--contrast", help="Why the continuation rather than this one (as many tokens): values explain log p(token) - log p(alternative)."),
    budget: int = typer_option(GenerationOptions, "budget"),
    precision: float = typer_option(GenerationOptions, "precision"),
    steps: int = typer_option(GenerationOptions, "steps"),
    seed: int = typer_option(GenerationOptions, "seed"),
    no_scores: bool = typer.Option(False, "--no-scores", help="Skip the faithfulness scores (2n + 2 forward passes per generated token)."),
    bf16: bool = typer.Option(False, "--bf16", help="Score coalitions in bfloat16 (faster on CPUs with AVX512-BF16; log-probabilities move slightly)."),
    fmt: GenerateFormat = typer.Option(GenerateFormat.text, "--format", "-f", help="text (heat map), json or html (self-contained page)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write json/html to this file instead of standard output."),
) -> None:
    """Generate, then show which prompt words (and earlier generated tokens) drove each generated token."""
    from shatterbox.generation import explain_generation
    from shatterbox.models import load

    with _friendly_errors():
        slow = threading.Timer(2.0, _say, [f"loading {model} (seconds; the first run of gemma-3-270m dequantises it into the cache: about a minute)"])
        slow.start()  # said only when loading takes more than 2 s: a quick refusal stays one line
        try:
            loaded = load(model)
        finally:
            slow.cancel()
        planned = []

        def plan_first(tick):  # the plan, as soon as the library knows it (after generating), then the progress
            def report(done: int, total: int) -> None:
                if not planned:
                    planned.append(total)
                    _say(f"plan: {method} attributions, at most {total:,} forward passes (coalitions, then the faithfulness curves)")
                tick(done, total)
            return report

        with progress_of(f"generate and explain ({method})", "forward passes") as tick:
            e = explain_generation(loaded, prompt, continuation=continuation, max_new_tokens=max_new_tokens, method=method,
                                   contrast=contrast, budget=budget, precision=precision, steps=steps, seed=seed,
                                   score=not no_scores, dtype="bfloat16" if bf16 else "float32", progress=plan_first(tick))
        _emit_result(e, e.notes, fmt.value, out)


@app.command("cache")
def cache_cmd(
    clear: bool = typer.Option(False, "--clear", help="Delete every cached dequantised model."),
) -> None:
    """Where dequantised GGUF models (e.g. gemma-3-270m) are cached, how big they are; --clear deletes them."""
    from shatterbox import decoders

    with _friendly_errors():
        root = decoders.cache_dir()
        if clear:
            freed = decoders.clear_cache()
            typer.echo(f"deleted {root} ({freed / 1e9:.2f} GB)")
            return
        folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        typer.echo(f"cache: {root} (set ${decoders.CACHE_ENV} to move it)")
        for folder in folders:
            size = decoders.folder_bytes(folder)
            typer.echo(f"  {folder.name}  {size / 1e9:.2f} GB")
        if not folders:
            typer.echo("  (empty)")
