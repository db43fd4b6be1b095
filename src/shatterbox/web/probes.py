"""The Probes and Projector tabs: where a property becomes readable, and 2-D maps of a store's layers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field, create_model

from shatterbox.options import ProbeOptions, ProjectOptions, request_fields
from shatterbox.web.folder import factors_of, open_store, store_dirs
from shatterbox.web.served import FileCache, Served, json_bytes


ProbeRequest = create_model(
    "ProbeRequest",
    property=(str, Field("pos", min_length=1, max_length=100, description="Token level: pos, supersense or sense; sentence level: a label column.")),
    layers=(list[int] | None, Field(None, description="Hidden layers to probe (default: all the store holds).")),
    limit=(int, Field(2000, ge=20, le=20_000, description="Examples used at most (a seeded sample), so that a probe answers in seconds.")),
    random=(str | None, Field(None, description="A store of the same corpus harvested with --random-weights, for the baseline curves.")),
    **request_fields(ProbeOptions),
)

ProjectRequest = create_model(
    "ProjectRequest",
    layers=(list[int] | None, Field(None, description="Hidden layers to map (default: all the store holds).")),
    colour=(str | None, Field(None, max_length=100, description="The colouring shown first: a label column, or prediction.")),
    predict=(bool, Field(False, description="Add the served classifier's prediction and confidence (read from the store when its encoder's last layer answers it, else run once per sentence).")),
    factors=(str | None, Field(None, max_length=200, description="A factors file of the served folder, fitted on this store: colour by one factor's code.")),
    factor=(int, Field(0, ge=0, description="The factor (from 0) whose code colours the points.")),
    **request_fields(ProjectOptions),
)


def router(served: Served) -> APIRouter:
    """``/api/stores/{name}/probe`` and ``/api/stores/{name}/project``."""
    api = APIRouter()
    probes = FileCache(16 << 20)  # (manifests, store, request) -> probe results
    maps = FileCache(256 << 20)  # (manifest, store, request) -> projector payload

    @api.get("/api/stores/{name}/properties", summary="What a store can be probed for, with its examples and classes, or why not")
    async def store_properties(name: str) -> dict:
        def work() -> dict:
            from shatterbox.probes import available
            from shatterbox.store import control_problems, same_sentences

            store = open_store(served.folder, name)
            others = [open_store(served.folder, s.name) for s in store_dirs(served.folder) if s.name != name]
            controls = [o.root.name for o in others if not control_problems(store.manifest, o.manifest, same_texts=same_sentences(store, o))]
            return {"store": name, "controls": controls,
                    "properties": probes.get_or_make_for([store.root / "manifest.json"], (name, "properties"), lambda: available(store))}

        return await served.run(work)

    @api.post("/api/stores/{name}/probe", summary="Probe a property layer by layer, with its control task (and a random-weight store's curves)")
    async def probe_store(name: str, req: ProbeRequest, request: Request) -> dict:
        def work(job) -> dict:
            from shatterbox.probes import probe
            from shatterbox.render.probes import probe_svg

            from shatterbox.store import check_control

            store = open_store(served.folder, name)
            control = open_store(served.folder, req.random) if req.random else None
            if control is not None:
                check_control(store, control, parameter="random")
            options = dict(level=req.level, kind=req.kind, layers=req.layers, folds=req.folds, limit=req.limit, seed=req.seed)

            def make() -> dict:
                job.say(f"probing {req.property} on {name}")
                result = probe(store, req.property, progress=job.tick, **options)
                if control is not None:
                    job.say(f"probing {req.property} on the random-weight store {req.random}")
                baseline = None if control is None else probe(control, req.property, progress=job.tick, **options)
                return {"store": name, "random": req.random, "result": result.to_dict(),
                        "random_weights": None if baseline is None else baseline.to_dict(), "svg": probe_svg(result, baseline)}

            manifests = [s.root / "manifest.json" for s in (store, control) if s is not None]
            return probes.get_or_make_for(manifests, (name, req.model_dump_json()), make)

        return await served.job(request, "probe", work)

    @api.post("/api/stores/{name}/project", summary="2-D maps (PCA or UMAP) of sentences or tokens at every layer, with their faithfulness")
    async def project_store(name: str, req: ProjectRequest, request: Request) -> Response:
        def work(job) -> Response:
            from shatterbox.projector import map_store
            from shatterbox.render.projector import projector_payload

            store = open_store(served.folder, name)

            def make() -> bytes:
                factors = factors_of(served.folder, req.factors, name) if req.factors else None
                points, found = map_store(store, method=req.method, level=req.level, pool=req.pool, layers=req.layers, limit=req.limit,
                                          seed=req.seed, classifier=served.store_classifier() if req.predict else None,
                                          factors=factors, factor=req.factor if factors is not None else None, progress=job.tick)
                first = req.colour or next((label for label in points.values if label.startswith("factor ")), None)
                return json_bytes(projector_payload(points, found, colour=first)).body

            return Response(maps.get_or_make_for([store.root / "manifest.json"], (name, req.model_dump_json()), make), media_type="application/json")

        return await served.job(request, "map", work)

    return api
