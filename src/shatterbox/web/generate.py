"""The Generate tab: why a decoder wrote each token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shatterbox.web.served import Served, json_bytes


class GenerateRequest(BaseModel):
    prompt: str = Field(..., description="The prompt to continue.", examples=["The capital of France is"])
    continuation: str | None = Field(None, description="Explain this continuation instead of generating one (include its leading space).")
    max_new_tokens: int = Field(6, ge=1, le=32, description="Tokens to generate greedily.")
    method: Literal["shapley", "exact", "sampled", "ig", "rollout"] = "shapley"
    contrast: str | None = Field(None, description="An alternative continuation of as many tokens: why this one rather than that.")
    budget: int = Field(2000, ge=10, le=20_000, description="Sampled Shapley: most forward passes.")
    precision: float = Field(0.2, ge=0.01, le=5.0, description="Sampled Shapley: stop when every 95% error bar is at most this (nats).")
    steps: int = Field(64, ge=2, le=256, description="Integrated gradients: Gauss-Legendre steps.")


def router(served: Served) -> APIRouter:
    """``/api/generate``."""
    api = APIRouter()

    @api.post("/api/generate", summary="Generate, then which prompt words (and earlier tokens) drove each generated token")
    async def generate(req: GenerateRequest) -> Response:
        def work() -> Response:
            from shatterbox.generation import explain_generation

            served.check_text(req.prompt, "prompt")
            for extra in (req.continuation, req.contrast):
                served.check_text(extra, "continuation")
            with served.decoders.lock:
                e = explain_generation(served.decoders.get(), req.prompt, **req.model_dump(exclude={"prompt"}))
            return json_bytes(e.to_dict())

        return await served.run(work)

    return api
