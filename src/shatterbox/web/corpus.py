"""The Corpus tab: the served folder's activation stores, and where a word occurs in one."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shatterbox.web.folder import list_stores, open_store
from shatterbox.web.served import Served


class OccurrencesRequest(BaseModel):
    word: str = Field(..., min_length=1, max_length=100, description="A word of the corpus (case-insensitive).")
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0, description="Rows to skip: the next page starts at offset + limit.")


# one row per word occurrence (its pieces merged), with its characters in the sentence
_WORDS = ("select sentence_id, word_index, any_value(word) as word, min(position) as position, min(char_start) as char_start, "
          "max(char_end) as char_end from tokens where lower(word) = lower(?) group by sentence_id, word_index")


def router(served: Served) -> APIRouter:
    """``/api/stores`` and ``/api/stores/{name}/occurrences``."""
    api = APIRouter()

    @api.get("/api/stores", summary="The activation stores in the served folder (shatterbox serve --stores DIR)")
    async def stores() -> dict:
        return await served.run(lambda: {"folder": None if served.folder is None else served.folder.name,
                                         "model_hash": served.model_hash(), "stores": list_stores(served.folder)})

    @api.post("/api/stores/{name}/occurrences", summary="Where a word occurs in a store: token rows with their sentences")
    async def occurrences(name: str, req: OccurrencesRequest) -> dict:
        def work() -> dict:
            store = open_store(served.folder, name)
            word = req.word.strip()
            rows = store.query(
                f"select w.sentence_id, w.position, w.word, w.char_start, w.char_end, s.text from ({_WORDS}) w join sentences s on s.id = w.sentence_id "
                "order by w.sentence_id, w.position limit ? offset ?",
                [word, req.limit, req.offset],
            ).to_pylist()
            total = store.query(f"select count(*) from ({_WORDS})", [word]).column(0)[0].as_py()
            return {"store": name, "word": word, "total": total, "offset": req.offset, "rows": rows}

        return await served.run(work)

    return api
