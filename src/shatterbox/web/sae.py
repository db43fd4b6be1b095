"""The SAEs tab: a factors file of SAEs (fitted here, or imported from SAELens, sparsify or Gemma Scope) held to the
field's scores, each beside its random-weight control, and one latent exported in Neuronpedia's format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, create_model

from shatterbox.options import SaeOptions, request_fields
from shatterbox.web.folder import open_factors
from shatterbox.web.served import Served, json_bytes

_NAME = dict(max_length=200, description="A factors file of SAEs in the served folder (factors fit --kind sae, or sae import).")
_CONTROL = dict(max_length=200, description="A factors file fitted the same way on the random-weight store of the same corpus: scored beside.")
_LAYER = dict(ge=0, le=1000, description="The layer whose SAE is measured (default: the first fitted).")

ScoreRequest = create_model(
    "SaeScoreRequest",
    factors=(str, Field(..., **_NAME)),
    control=(str | None, Field(None, **_CONTROL)),
    **request_fields(SaeOptions, "texts"),
)

ProbeRequest = create_model(
    "SaeProbeRequest",
    factors=(str, Field(..., **_NAME)),
    control=(str | None, Field(None, **_CONTROL)),
    property=(str, Field("pos", pattern="^(pos|supersense)$", description="pos or supersense of the WordNet headword.")),
    layer=(int | None, Field(None, **_LAYER)),
    **request_fields(SaeOptions, "ks", "seeds"),
)

AbsorptionRequest = create_model(
    "SaeAbsorptionRequest",
    factors=(str, Field(..., **_NAME)),
    control=(str | None, Field(None, **_CONTROL)),
    layer=(int | None, Field(None, **_LAYER)),
    **request_fields(SaeOptions, "words", "seeds"),
)


def model_of(store, served: Served):
    """The model ``store`` was harvested with: the served one when its weights hash (computed once per app) is the
    store's, else loaded by the store's name and checked."""
    from shatterbox.store import harvested_model

    if store.manifest["model"]["hash"] == served.model_hash():
        return served.model
    return harvested_model(store)


def router(served: Served) -> APIRouter:
    """``/api/sae/score``, ``/api/sae/probe``, ``/api/sae/absorption`` and ``/api/sae/{name}/neuronpedia/{latent}``."""
    api = APIRouter()

    def control_of(name: str | None, with_model: bool):
        if not name:
            return None
        factors, store = open_factors(served.folder, name)
        return (factors, store, model_of(store, served)) if with_model else (factors, store)

    @api.post("/api/sae/score", summary="Per layer: variance explained, L0, dead and dense latents, loss recovered; beside the control")
    async def score(req: ScoreRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.sae import control_note, sae_scores

            factors, store = open_factors(served.folder, req.factors)
            control = control_of(req.control, True)
            job.say("splicing each layer with its reconstruction")
            scores = sae_scores(factors, model_of(store, served), texts=req.texts, control=control, progress=job.tick)
            return json_bytes(scores.to_dict() | {"note": control_note(scores.table()), "factors": req.factors, "control_file": req.control})

        return await served.job(request, "SAE scores", work)

    @api.post("/api/sae/probe", summary="Sparse probing (SAEBench): k latents against k random ones, a dense probe and the majority class")
    async def probe(req: ProbeRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.sae import sparse_probing

            factors, _ = open_factors(served.folder, req.factors)
            control = control_of(req.control, False)
            result = sparse_probing(factors, req.property, layer=req.layer, ks=req.ks, seeds=req.seeds, progress=job.tick,
                                    control=(control[0], None) if control else None)
            return json_bytes(result.to_dict() | {"factors": req.factors})

        return await served.job(request, "sparse probing", work)

    @api.post("/api/sae/absorption", summary="First-letter feature absorption (SAEBench), mean ± sd over seeds, beside the control")
    async def absorption(req: AbsorptionRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.sae import absorption, absorption_summary

            factors, store = open_factors(served.folder, req.factors)
            control = control_of(req.control, True)
            model = model_of(store, served)
            results = []
            for seed in range(req.seeds):
                job.tick(seed, req.seeds, f"seed {seed + 1} of {req.seeds}")
                results.append(absorption(factors, model, layer=req.layer, words=req.words, seed=seed,
                                          control=(control[0], control[2]) if control else None))
            job.tick(req.seeds, req.seeds)
            return json_bytes({"factors": req.factors, "layer": results[0].layer, "summary": absorption_summary(results),
                               "letters": results[0].letters})

        return await served.job(request, "absorption", work)

    @api.get("/api/sae/{name}/neuronpedia/{latent}", summary="One latent as a Neuronpedia feature JSON (a download)")
    async def neuronpedia(name: str, latent: int, layer: int | None = None) -> Response:
        def work() -> Response:
            from shatterbox.models import has_language_model_head
            from shatterbox.sae import neuronpedia_feature

            factors, store = open_factors(served.folder, name)
            model = model_of(store, served)
            feature = neuronpedia_feature(factors, latent, layer=layer, model=model if has_language_model_head(model) else None)
            answer = json_bytes(feature)
            answer.headers["content-disposition"] = f'attachment; filename="{name.rsplit(".", 1)[0]}-{latent}.neuronpedia.json"'
            return answer

        return await served.run(work)

    return api
