"""The Patching tab: what a component does to the output, by activation patching between a clean and a corrupted text."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, create_model

from shatterbox.errors import InputError
from shatterbox.options import PatchOptions, request_fields
from shatterbox.web.served import Served, json_bytes


PatchRequest = create_model(
    "PatchRequest",
    clean=(str, Field(..., description="The clean text.", examples=["The film was not bad."])),
    corrupt=(str, Field(..., description="The corrupted text: as many tokens, or as many words.", examples=["The film was very bad."])),
    model=(str, Field("classifier", description="classifier (the served classifier) or decoder (the served decoder, measured by answer).",
                      pattern="^(classifier|decoder)$")),
    layers=(list[int] | None, Field(None, description="Layers to patch (default all; hidden states count from 0).", max_length=64)),
    label=(str | None, Field(None, description="Classifier: the label measured (default: the clean text's prediction).", max_length=100)),
    answer=(str | None, Field(None, description="Decoder: the continuation scored (with its leading space).", max_length=200)),
    wrong=(str | None, Field(None, description="Decoder: measure the answer's logit minus this one's.", max_length=200)),
    measure=(str | None, Field(None, description="logit_diff, logit, prob or kl (classifier); logprob, logit_diff or kl (decoder).", max_length=20)),
    **request_fields(PatchOptions),
)


def router(served: Served) -> APIRouter:
    """``/api/patch``."""
    api = APIRouter()

    @api.post("/api/patch", summary="Activation patching: each component's effect between a clean and a corrupted text")
    async def patch(req: PatchRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.patching import make_target, patch_report, sweep

            served.check_text(req.clean, "clean text")
            served.check_text(req.corrupt, "corrupted text")
            target = make_target(_model(served, req.model, job), label=req.label, answer=req.answer, wrong=req.wrong, measure=req.measure)
            job.say("patching, one run per cell, batched")
            main, other = sweep(req.clean, req.corrupt, target, method=req.method, component=req.component, direction=req.direction,
                                positions=req.positions, layers=req.layers, progress=job.tick)
            return json_bytes(patch_report(main, other))

        return await served.job(request, "patching", work)

    return api


def _model(served: Served, which: str, job):
    if which == "decoder":
        with served.decoders.lock:  # loaded once, whichever tab asks first
            return served.decoders.get(job.say)
    if served.classifier is None:
        raise InputError("the served model has no classifier: serve the default model (the shipped sentiment classifier) or a "
                         "sequence-classification model, or choose the decoder", parameter="model")
    return served.classifier
