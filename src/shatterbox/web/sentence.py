"""The sentence-level tabs (Attention, Heads, the views) and the app's page, static files and model summary."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shatterbox.errors import EmptyText, InputError
from shatterbox.options import ANALYSES, describe
from shatterbox.web.served import Served, json_bytes
from shatterbox.web.server import SECURITY_HEADERS, STATIC, read_static


class TraceRequest(BaseModel):
    text: str = Field(..., description="The sentence to analyse.", examples=["Transformers possess surprising emerging features."])
    pair: str | None = Field(None, description="An optional second sentence (a sentence pair).")


class ViewRequest(TraceRequest):
    neuron: bool = Field(
        True, description="Include the neuron view (its queries and keys; past twice the head size in tokens the other views read them anyway, so it costs nothing there)."
    )


class AttentionRequest(TraceRequest):
    layer: int = Field(1, description="Layer, numbered from 1.")
    head: int = Field(1, description="Head, numbered from 1.")
    level: Literal["token", "word"] = "token"
    specials: bool = Field(True, description="Keep [CLS]/[SEP]-like tokens (false: drop them and renormalise rows).")
    word: str | None = Field(None, description="Rank what this word attends to instead of returning the table.")


class HeadsRequest(BaseModel):
    texts: list[str] = Field(..., min_length=1, description="Sentences to measure the heads over.")
    top: int = Field(15, ge=1, le=1000)


def page_router() -> APIRouter:
    """The page and its files (nothing else is ever read from disk)."""
    api = APIRouter()

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(read_static("shatterbox.web.static", "index.html"), headers=SECURITY_HEADERS)

    @api.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no such file: {name!r}")
        package, file, media = STATIC[name]
        if name == "palette.js":  # the colours, from render/palette.py
            from shatterbox.render.html import palette_script

            body = palette_script()
        else:
            body = read_static(package, file)
        return Response(body, media_type=media, headers=SECURITY_HEADERS)

    return api


def router(served: Served) -> APIRouter:
    """The page, its files, ``/api/model``, ``/api/trace``, ``/api/attention`` and ``/api/heads``."""
    api = page_router()

    @api.get("/api/model", summary="The served model: name, layers, heads, labels, limits")
    async def model_info() -> dict:
        from shatterbox.attribution import METHODS

        loaded, clf = served.model, served.classifier
        return {
            "model": loaded.name,
            "title": loaded.title,
            "layers": loaded.n_layers,
            "heads": loaded.n_heads,
            "numbering": "layers and heads are numbered from 1",
            "classifier": None if clf is None else {"name": clf.name, "labels": clf.labels},
            "decoder": served.decoders.name,
            "methods": [*METHODS, "all"],
            "limits": served.limits.model_dump(),
        }

    @api.get("/api/options", summary="Every analysis's options: default, range, choices and help (the page's form defaults)")
    async def options_info() -> dict:
        return {group: describe(options) for group, options in ANALYSES.items()}

    @api.post("/api/trace", summary="Capture a sentence: tokens, words and every layer's attention (the views' data)")
    async def trace(req: ViewRequest) -> Response:
        from shatterbox.render.html import payload

        async def work() -> Response:
            t = await served.trace_for(req.text, req.pair)

            def build() -> Response:
                warning = None
                if t.truncated:
                    warning = f"the text is longer than the model accepts ({served.model.max_length} tokens): the last {t.truncated} tokens were cut off"
                return json_bytes({**payload(t, neuron=req.neuron), "text": t.text, "pair": t.text_pair, "truncated": t.truncated, "warning": warning})

            return await served.in_thread(build)

        return await served.admitted(work)

    @api.post("/api/attention", summary="One head's probability table, or the ranking of what one word attends to")
    async def attention(req: AttentionRequest) -> dict:
        from shatterbox.attention import attends_to, attention_table

        async def work() -> dict:
            t = await served.trace_for(req.text, req.pair)

            def table() -> dict:
                if req.word is not None:
                    return attends_to(t, req.layer, req.head, req.word, level=req.level, specials=req.specials).to_dict()
                return attention_table(t, req.layer, req.head, level=req.level, specials=req.specials).to_dict()

            return await served.in_thread(table)

        return await served.admitted(work)

    @api.post("/api/heads", summary="The head finder over a few sentences: statistics, kinds and ranking")
    async def heads(req: HeadsRequest) -> dict:
        from shatterbox.heads import head_stats

        texts = [t for t in req.texts if t.strip()]
        if not texts:
            raise EmptyText("list of sentences")
        if len(texts) > served.limits.max_texts:
            raise InputError(f"{len(texts)} sentences; this server measures at most {served.limits.max_texts} at once")

        async def work() -> dict:
            found = await served.traces_for(texts)
            return await served.in_thread(lambda: head_stats(found).to_dict(req.top))

        return await served.admitted(work)

    return api
