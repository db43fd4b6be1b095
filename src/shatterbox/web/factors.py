"""The Factors tab: factor files of the served folder, their levels, one factor's contexts, a word's senses."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from starlette.exceptions import HTTPException

from shatterbox.errors import InputError
from shatterbox.web.corpus import OccurrencesRequest
from shatterbox.web.folder import list_factors, open_factors
from shatterbox.web.served import FileCache, Served


def router(served: Served) -> APIRouter:
    """``/api/factors`` and the levels, factors and words of one file."""
    api = APIRouter()
    tops = FileCache(64 << 20)  # (factors file, layer, block) -> TopK of a block of factors

    @api.get("/api/factors", summary="Factor files in the served folder (shatterbox factors fit STORE --out DIR/NAME.factors)")
    async def factor_files() -> dict:
        return await served.run(lambda: {"factors": list_factors(served.folder)})

    @api.get("/api/factors/{name}/level/{level}", summary="The factors of one level, strongest first, with their importance curves")
    async def factors_level(name: str, level: str, limit: int = 40, offset: int = 0) -> dict:
        def work() -> dict:
            factors, _ = open_factors(served.folder, name)
            if level not in ("low", "mid", "high", "dead"):
                raise HTTPException(404, f"no level {level!r}: low, mid, high or dead")
            chosen = np.flatnonzero(factors.levels_ == level)
            total, offset_ = len(chosen), max(0, offset)
            chosen = chosen[np.argsort(-factors.importance_[chosen].max(1), kind="stable")][offset_: offset_ + max(1, min(limit, 200))]
            return {"name": name, "level": level, "layers": factors.layers, "total": total, "offset": offset_,
                    "factors": [{"factor": int(f), "curve": factors.importance_[f].round(4).tolist()} for f in chosen]}

        return await served.run(work)

    @api.get("/api/factors/{name}/factor/{index}", summary="One factor: level, importance curve and top contexts (from the store)")
    async def factor_detail(name: str, index: int) -> dict:
        def work() -> dict:
            from shatterbox.factors import contexts

            factors, store = open_factors(served.folder, name)
            if not 0 <= index < factors.n_factors:
                raise HTTPException(404, f"factor {index} is out of range: 0-{factors.n_factors - 1}")
            layer = factors.layers[int(factors.importance_[index].argmax())]
            units = factors.companions(index)
            top = tops.get_or_make_for([served.folder / name], (name, layer, units[0]), lambda: store.top_k(
                f"hidden_{layer}", units, 8, transform=lambda h: factors.codes(h, layer, units=units), where="not special"))
            return {"name": name, "factor": index, "home": factors.home(index), "level": str(factors.levels_[index]), "layers": factors.layers,
                    "peak_layer": layer, "curve": factors.importance_[index].round(4).tolist(),
                    "contexts": contexts(factors, store, [index], layer, 8, top=top)[index]}

        return await served.run(work)

    @api.post("/api/factors/{name}/word", summary="A word's sense-labelled occurrences grouped by the factors that fire, with agreement scores")
    async def factor_word(name: str, req: OccurrencesRequest) -> dict:
        def work() -> dict:
            from shatterbox.factors import word_senses

            factors, store = open_factors(served.folder, name)
            try:
                return word_senses(factors, store, req.word.strip())
            except InputError as exc:
                if exc.parameter != "min_examples":
                    raise
                raise InputError(f"no word in the store {store.root.name} has two senses with 3 or more sense-labelled examples each: "
                                 "fit factors on a store of the WordNet senses corpus (shatterbox harvest wordnet-senses --out DIR/NAME)") from None

        return await served.run(work)

    return api
