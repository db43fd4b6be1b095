"""Long requests as jobs: the page gets progress from the library's own callbacks, can cancel, and work whose caller
went away stops (measured by the job's count of the library's progress reports)."""

import http.client
import json
import socket
import time

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.store import harvest
from shatterbox.web import Limits, create_app, running
from shatterbox.web.jobs import JOB_HEADER, Job
from tests.conftest import local_client, open_app
from tests.web.test_store_tabs import use_store

PROBE = {"property": "pos", "folds": 5, "limit": 3000}  # 6 layers x 5 folds x (task, control) = 60 fits, ~2 s
SLOW = {**PROBE, "kind": "mlp"}  # the same 60 fits with the MLP probe: a minute or more, so stopping it shows
START = {JOB_HEADER: "start"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("job-stores")
    harvest(load_corpus("wordnet", limit=900, seed=3), root / "wn", model=default_model, layers="1-6")
    return root


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _still(job: Job, seconds: float = 1.5) -> bool:
    """The library reported no progress for ``seconds``: the work stopped."""
    before = job.ticks
    time.sleep(seconds)
    return job.ticks == before


@pytest.mark.slow
def test_a_job_reports_progress_then_answers_as_the_plain_request(folder):
    app = create_app(stores=folder)
    with local_client(app) as client:  # one event loop for the whole test, as a server has (jobs run on it)
        _answers_after_progress(client)


def _answers_after_progress(client) -> None:
    started = client.post("/api/stores/wn/probe", json=PROBE, headers=START)
    assert started.status_code == 202 and started.json()["state"] == "running" and started.json()["kind"] == "probe"
    seen = []
    while True:
        r = client.get(f"/api/jobs/{started.json()['job']}")
        if r.status_code != 202:
            break
        seen.append(r.json())
        time.sleep(0.1)
    assert r.status_code == 200 and [s["layer"] for s in r.json()["result"]["layers"]] == [1, 2, 3, 4, 5, 6]
    counted = [s for s in seen if s["total"]]
    assert counted and all(s["total"] == 60 and 0 <= s["done"] <= 60 for s in counted)
    assert [s["done"] for s in counted] == sorted(s["done"] for s in counted)  # done only grows
    assert any(s["estimate"] is not None for s in counted) and "probing pos" in counted[-1]["stage"]
    again = client.post("/api/stores/wn/probe", json=PROBE)  # a plain request: the same answer (from the cache)
    assert again.status_code == 200 and again.json() == r.json()
    assert client.get(f"/api/jobs/{started.json()['job']}").status_code == 400  # fetched once, then gone


@pytest.mark.slow
def test_cancel_stops_the_work(folder):
    app = create_app(stores=folder)
    with local_client(app) as client:
        job_id = client.post("/api/stores/wn/probe", json={**SLOW, "seed": 1}, headers=START).json()["job"]
        job = app.state.served.jobs.table[job_id]
        _wait(lambda: job.done >= 2)
        cancelled = client.delete(f"/api/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelling"
        _wait(lambda: job.task.done())
        r = client.get(f"/api/jobs/{job_id}")
    assert r.status_code == 400 and r.json()["error"] == "the probe was cancelled"
    assert job.done < 60 and _still(job)


@pytest.mark.slow
def test_a_job_nobody_polls_is_abandoned(folder):
    app = create_app(stores=folder, limits=Limits(abandon_after=1.0))
    with local_client(app) as client:
        job_id = client.post("/api/stores/wn/probe", json={**SLOW, "seed": 2}, headers=START).json()["job"]
        job = app.state.served.jobs.table[job_id]
        _wait(lambda: job.task.done(), timeout=30)
    assert job.done < 60 and "abandoned" in str(job.task.exception()) and _still(job)


@pytest.mark.slow
def test_a_plain_request_whose_caller_disconnects_stops(folder):
    app = create_app(stores=folder)
    with running(app) as url:
        host, port = url.split("//")[1].rstrip("/").split(":")
        body = json.dumps({**SLOW, "seed": 3}).encode()
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"POST /api/stores/wn/probe HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        _wait(lambda: any(j.done >= 2 for j in app.state.served.jobs.table.values()))
        job = next(iter(app.state.served.jobs.table.values()))
        sock.close()  # the caller goes away
        _wait(lambda: job.task.done(), timeout=30)
        assert job.done < 60 and "disconnected" in str(job.task.exception()) and _still(job)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/api/model")
        assert conn.getresponse().status == 200  # the server goes on


@pytest.mark.slow
def test_the_probes_tab_shows_progress_and_can_cancel(browser, folder):
    app = create_app(stores=folder)
    with running(app) as url:
        page, errors, dialogs = open_app(browser, url)
        use_store(page, "wn")
        page.click('nav button[data-tab="probes"]')
        page.fill("#probes-limit", "3000")
        page.select_option("#probes-kind", "mlp")
        page.click("#probes-run")
        page.wait_for_function("() => / of 60 · /.test(document.querySelector('#probes-progress .job-text').textContent)")
        text = page.locator("#probes-progress .job-text").text_content()
        assert text.startswith("probe pos") and "elapsed" in text
        job = next(iter(app.state.served.jobs.table.values()))
        page.click("#probes-progress .job-cancel")
        page.wait_for_selector("#probes-error:not([hidden])")
        assert page.locator("#probes-error").text_content().endswith("cancelled") and page.locator("#probes-progress").is_hidden()
        _wait(lambda: job.task.done())
        assert job.done < 60 and _still(job)
        page.close()
    assert errors == [] and dialogs == []
