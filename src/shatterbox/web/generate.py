"""The Generate tab: why a decoder wrote each token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, create_model

from shatterbox.options import GenerationOptions, request_fields
from shatterbox.web.served import Served, json_bytes


GenerateRequest = create_model(
    "GenerateRequest",
    prompt=(str, Field(..., description="The prompt to continue.", examples=["The capital of France is"])),
    continuation=(str | None, Field(None, description="Explain this continuation instead of generating one (include its leading space).")),
    contrast=(str | None, Field(None, description="An alternative continuation of as many tokens: why this one rather than that.")),
    **request_fields(GenerationOptions),
)


def router(served: Served) -> APIRouter:
    """``/api/generate``."""
    api = APIRouter()

    @api.post("/api/generate", summary="Generate, then which prompt words (and earlier tokens) drove each generated token")
    async def generate(req: GenerateRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.generation import explain_generation

            served.check_text(req.prompt, "prompt")
            for extra in (req.continuation, req.contrast):
                served.check_text(extra, "continuation")
            with served.decoders.lock:
                decoder = served.decoders.get(job.say)
                job.say("generating, then explaining each generated token")
                e = explain_generation(decoder, req.prompt, progress=job.tick, **req.model_dump(exclude={"prompt"}))
            return json_bytes(e.to_dict())

        return await served.job(request, "generation", work)

    return api
