"""The Lens and Steering tabs: what each layer of the served decoder already predicts (logit lens, or a tuned lens fitted on
a store of the served folder; the classifier lens for the served classifier), and what pushing it along a direction does."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, create_model

from shatterbox.errors import InputError
from shatterbox.options import LensOptions, SteerOptions, request_fields
from shatterbox.web.folder import open_store, store_dirs
from shatterbox.web.served import Served, json_bytes

LensRequest = create_model(
    "LensRequest",
    text=(str, Field(..., description="The text read at every layer and position.", examples=["The capital of France is"])),
    tuned=(str | None, Field(None, max_length=200, description="With lens=tuned: a store of the served folder holding a tuned lens (shatterbox lens fit STORE).")),
    **request_fields(LensOptions, "lens", "k"),
)

SteerRequest = create_model(
    "SteerRequest",
    prompts=(list[str], Field(..., min_length=1, max_length=20, description="Prompts to continue.", examples=[["The weather today is"]])),
    direction=(str, Field("sentiment", pattern="^(sentiment|diffmean|probe)$",
                          description="sentiment (DiffMean of the shipped sentiment sentences), diffmean or probe (of store, by labels).")),
    store=(str | None, Field(None, max_length=200, description="For diffmean and probe: a store of the served folder harvested with the decoder.")),
    labels=(str, Field("label=positive,negative", max_length=200, description="For diffmean and probe: COLUMN=FIRST,SECOND (first minus second).")),
    concept=(str, Field("sentiment", max_length=400, description="sentiment (the shipped classifier scores each continuation) or comma-separated concept words.")),
    target=(str, Field("positive", max_length=40, description="With concept sentiment: the label scored.")),
    instruction=(str | None, Field(None, max_length=400, description="The prompting baseline's instruction (default from the concept; empty for none).")),
    **request_fields(SteerOptions),
)


def tuned_stores(folder) -> list[str]:
    """Stores of the served folder that hold a fitted tuned lens.

    Examples:
        >>> tuned_stores(None)
        []
    """
    from shatterbox.lens import TUNED_FILE

    return [s.name for s in store_dirs(folder) if (s / TUNED_FILE).is_file()] if folder is not None else []


def router(served: Served) -> APIRouter:
    """``/api/lens``, ``/api/lens/tuned`` and ``/api/steer``."""
    api = APIRouter()

    @api.get("/api/lens/tuned", summary="Stores of the served folder with a tuned lens")
    async def tuned() -> dict:
        return {"stores": tuned_stores(served.folder)}

    @api.post("/api/lens", summary="The logit, tuned or classifier lens of one text")
    async def lens(req: LensRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.lens import TUNED_FILE, lens_of

            served.check_text(req.text)
            if req.lens == "classifier":
                if served.classifier is None:
                    raise InputError("the served model has no classifier: serve the default model (the shipped sentiment classifier)", parameter="lens")
                return json_bytes(lens_of(served.classifier, req.text, lens="classifier").to_dict())
            if req.lens == "tuned" and not req.tuned:
                raise InputError("the tuned lens needs a store with a fitted lens: fit one with `shatterbox lens fit STORE`", parameter="tuned")
            tuned = open_store(served.folder, req.tuned).root / TUNED_FILE if req.lens == "tuned" else None
            with served.decoders.lock:
                model = served.decoders.get(job.say)
                job.say("reading every layer")
                return json_bytes(lens_of(model, req.text, lens=req.lens, k=req.k, tuned=tuned).to_dict())

        return await served.job(request, "lens", work)

    @api.post("/api/steer", summary="Steer the served decoder along a direction; concept and fluency beside random and prompting")
    async def steer(req: SteerRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox import steering

            for prompt in req.prompts:
                served.check_text(prompt, "prompt")
            steering.parse_alphas(req.alphas)  # before any direction is built
            with served.decoders.lock:
                model = served.decoders.get(job.say)
                layer = req.layer if req.layer is not None else steering.middle_layer(model)
                if req.direction == "sentiment":
                    job.say("DiffMean of the shipped sentiment sentences (harvested once)")
                    direction = steering.sentiment_direction(model, layer, progress=job.tick)
                else:
                    if not req.store:
                        raise InputError(f"the {req.direction} direction needs a store of the served folder harvested with the decoder", parameter="store")
                    column, first, second = steering.parse_labels(req.labels)
                    store = open_store(served.folder, req.store)
                    direction = (steering.diffmean(store, layer, column, first, second) if req.direction == "diffmean"
                                 else steering.probe_direction(store, column, layer, first))
                directions = [direction]
                if req.concept == "sentiment" and direction.kind != "diffmean":  # DiffMean is every report's baseline
                    directions.append(steering.sentiment_direction(model, layer, progress=job.tick))
                job.say("generating at every strength")
                result = steering.steer(model, req.prompts, directions, layer=layer, alphas=req.alphas, positions=req.positions,
                                        max_new_tokens=req.max_new_tokens, concept=req.concept, target=req.target, instruction=req.instruction,
                                        seed=req.seed, progress=job.tick)
            return json_bytes(result.to_dict())

        return await served.job(request, "steering", work)

    return api
