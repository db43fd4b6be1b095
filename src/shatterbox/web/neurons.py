"""The Neurons tab: one unit explained and scored, and the neuron runs of the served folder."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shatterbox.web.folder import STORE_NAME, factors_of, list_runs, open_store
from shatterbox.web.served import FileCache, Served


class NeuronRequest(BaseModel):
    layer: int = Field(..., ge=0, description="The layer whose MLP neurons (or, with factors, whose hidden states) are read.")
    unit: int = Field(..., ge=0, description="The neuron or factor number, from 0.")
    factors: str | None = Field(None, max_length=200, description="A factors file of the served folder fitted on this store: a factor instead of a neuron.")
    seed: int = 0


def router(served: Served) -> APIRouter:
    """``/api/stores/{name}/neuron``, ``/api/neurons`` and ``/api/neurons/{run}``."""
    api = APIRouter()
    units_cache = FileCache(64 << 20)  # (manifest, store, request) -> one unit explained and scored

    @api.post("/api/stores/{name}/neuron", summary="One MLP neuron (or factor): top and random excerpts, an offline explanation and its scores vs baselines")
    async def neuron_detail(name: str, req: NeuronRequest) -> dict:
        def work() -> dict:
            from shatterbox.neurons import Units, explain_unit

            store = open_store(served.folder, name)
            if req.factors:
                units = Units.factors(store, factors_of(served.folder, req.factors, name), req.layer, req.factors)
            else:
                units = Units.neurons(store, req.layer)
            return units_cache.get_or_make_for([store.root / "manifest.json"], (name, req.model_dump_json()),
                                               lambda: explain_unit(units, req.unit, seed=req.seed))

        return await served.run(work)

    @api.get("/api/neurons", summary="Neuron runs in the served folder (shatterbox neurons explain STORE --out DIR/NAME)")
    async def neuron_runs() -> dict:
        return await served.run(lambda: {"runs": list_runs(served.folder)})

    @api.get("/api/neurons/{run_name}", summary="The units of a neuron run sorted by score; search their explanations")
    async def neuron_run(run_name: str, search: str = "", limit: int = 50) -> dict:
        def work() -> dict:
            from shatterbox.neurons import read_run, unit_payload

            if served.folder is None or not STORE_NAME.match(run_name) or not (served.folder / run_name / "run.json").is_file():
                raise HTTPException(404, f"no neuron run named {run_name!r} in the served folder")
            record, table = read_run(served.folder / run_name)
            rows = table.to_pylist()
            if search.strip():
                rows = [r for r in rows if search.strip().lower() in r["explanation"].lower()]
            return {"run": run_name, "kind": record["kind"], "total": table.num_rows, "matches": len(rows),
                    "units": [unit_payload(r) for r in rows[: max(1, min(limit, 500))]]}

        return await served.run(work)

    return api
