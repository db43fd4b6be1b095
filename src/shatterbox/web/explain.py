"""The Explain tab: which words drove a prediction (one text), and its Dataset section (a corpus explanation)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import Field, create_model
from starlette.exceptions import HTTPException

from shatterbox.errors import NotAClassifier
from shatterbox.options import ExplainOptions, RankingOptions, request_fields
from shatterbox.web.folder import STORE_NAME, list_datasets, open_store
from shatterbox.web.served import FileCache, Served


ExplainRequest = create_model(
    "ExplainRequest",
    text=(str, ...),
    label=(str | None, Field(None, description="Label to explain (default: the predicted one).")),
    zero_shot=(list[str] | None, Field(None, description="Classify by similarity to these labels instead.")),
    **request_fields(ExplainOptions, unchecked=("method",)),
)


DatasetRequest = create_model(
    "DatasetRequest",
    limit=(int, Field(200, ge=2, le=1000, description="Store sentences to explain (explain-corpus only): about 0.1-0.2 s each.")),
    pairs=(int, Field(2, ge=1, le=16, description="Antithetic permutation pairs per text (explain-corpus only, sampled).")),
    method=(Literal["sampled", "kernel"], Field("sampled", description="explain-corpus only: quick sampled Shapley, or Kernel SHAP (8 evaluations per word).")),
    **request_fields(RankingOptions),
)


def _classifier_for(served: Served, req: ExplainRequest):
    """The classifier of ``req`` (runs in a worker thread: zero-shot label prototypes are a model call, under the gate)."""
    served.check_text(req.text)
    if req.zero_shot:
        from shatterbox.classifiers import zero_shot

        def make():
            with served.gate():
                return zero_shot(req.zero_shot, served.model)

        return served.zero_shots.get_or_make(tuple(req.zero_shot), make)
    if served.classifier is None:
        raise NotAClassifier(
            f"the served model {served.model.name!r} has no classification head: give zero_shot labels, or start "
            "`shatterbox serve` with a sequence-classification --model (or the default, which explains the shipped sentiment classifier)"
        )
    return served.classifier


def _dataset_response(run, req: DatasetRequest) -> dict:
    from shatterbox.global_attribution import dataset_payload
    from shatterbox.render.global_attribution import bars_svg

    payload = dataset_payload(run, by=req.by, min_count=req.min_count, top=req.top)
    payload["svg"] = {label: {d: bars_svg(payload["words"][label][d]) for d in ("up", "down")} for label in payload["labels"]}
    return payload


def router(served: Served) -> APIRouter:
    """``/api/explain``, ``/api/explain/plan``, ``/api/datasets`` and ``/api/stores/{name}/explain-corpus``."""
    api = APIRouter()
    datasets = FileCache(64 << 20)  # (files, request) -> Dataset payload

    @api.post("/api/explain/plan", summary="What an explanation will cost, before it runs: words and model evaluations per method")
    async def explain_plan(req: ExplainRequest) -> dict:
        def work() -> dict:
            from shatterbox.attribution import make_game, plan

            clf = _classifier_for(served, req)
            with served.gate():  # the game tokenizes with the model's tokenizer, which concurrent calls must not share
                game = make_game(clf, req.text, masking=req.masking)
            planned = plan(game, req.method, label=req.label, budget=req.budget, precision=req.precision, samples=req.samples,
                           steps=req.steps, pairs=req.pairs)
            return {"words": game.n, "plan": [{"method": m, "evaluations": n} for m, n in planned], "faithfulness": 2 * game.n + 2}

        return await served.run(work)

    @api.post("/api/explain", summary="Which words drove the prediction (attribution with faithfulness scores)")
    async def explain(req: ExplainRequest, request: Request) -> dict:
        def work(job) -> dict:
            from shatterbox.attribution import compare, explain as run_explain

            clf = _classifier_for(served, req)
            options = req.model_dump(exclude={"text", "zero_shot"})

            def make():
                with served.gate():
                    if options["method"].strip().lower() == "all":
                        return compare(clf, req.text, progress=job.tick, **{k: v for k, v in options.items() if k != "method"}).to_dict()
                    return run_explain(clf, req.text, progress=job.tick, **options).to_dict()

            return served.explanations.get_or_make((clf.name, req.text, tuple(sorted(options.items()))), make)

        return await served.job(request, "explanation", work)

    @api.get("/api/datasets", summary="Corpus explanations in the served folder (shatterbox explain --corpus FILE --results DIR/NAME)")
    async def list_dataset_runs() -> dict:
        return await served.run(lambda: {"runs": list_datasets(served.folder)})

    @api.post("/api/datasets/{run_name}", summary="A corpus explanation of the served folder: words per label with intervals, drill-down, diagnostics")
    async def dataset(run_name: str, req: DatasetRequest) -> dict:
        def work() -> dict:
            from shatterbox.global_attribution import CorpusRun

            if served.folder is None or not STORE_NAME.match(run_name) or not (served.folder / run_name / "run.json").is_file():
                raise HTTPException(404, f"no corpus explanation named {run_name!r} in the served folder")
            folder = served.folder / run_name
            return datasets.get_or_make_for(sorted(folder.iterdir()), (run_name, req.model_dump_json()),
                                            lambda: _dataset_response(CorpusRun.read(folder), req))

        return await served.run(work)

    @api.post("/api/stores/{name}/explain-corpus", summary="Explain the first sentences of a store with the served classifier (quick sampled Shapley or Kernel SHAP) and rank the words per label")
    async def explain_store(name: str, req: DatasetRequest, request: Request) -> dict:
        def work(job) -> dict:
            from shatterbox.global_attribution import CorpusSettings, explain_corpus

            store = open_store(served.folder, name)

            def make() -> dict:
                texts = store.query(f"select text from sentences order by id limit {int(req.limit)}").column(0).to_pylist()
                settings = CorpusSettings(method=req.method, pairs=req.pairs if req.method == "sampled" else None)
                return _dataset_response(explain_corpus(texts, served.store_classifier(), settings=settings, progress=job.tick), req)

            return datasets.get_or_make_for([store.root / "manifest.json"], (name, req.model_dump_json()), make)

        return await served.job(request, "corpus explanation", work)

    return api
