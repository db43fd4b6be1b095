"""Projector timings: 20,000 points mapped with PCA and UMAP (ours, from the store, against the bare
scikit-learn / umap-learn call on the same vectors, measured in the same run), and the page's frame
time while the mouse moves over the points, in Chromium.

    python bench/projector.py STORE [--points 20000] [--layer 6]

STORE: a harvested store with that many tokens (e.g. shatterbox harvest wordnet --where kind=example
--limit 12000 --out STORE).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from shatterbox.projector import point_vectors, project, token_points
from shatterbox.render.projector import projector_page
from shatterbox.store import Store


def warm_up() -> None:
    """umap-learn compiles with numba on first use: not part of either side's time."""
    import umap

    umap.UMAP(n_components=2, random_state=0).fit_transform(np.random.default_rng(0).normal(size=(6000, 8)))  # > 4,096: nearest-neighbour descent too


def bare(method: str, x: np.ndarray) -> float:
    start = time.perf_counter()
    if method == "pca":
        from sklearn.decomposition import PCA

        PCA(n_components=2, random_state=0).fit_transform(x)
    else:
        import umap

        umap.UMAP(n_components=2, random_state=0).fit_transform(x)
    return time.perf_counter() - start


def frame_times(page: Path, moves: int = 200) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1000, "height": 900})
        pg.goto(page.as_uri())
        times = pg.evaluate(
            """(moves) => { const c = document.getElementById('sbp-canvas'), r = c.getBoundingClientRect(), s = document.getElementById('sbp-root').sbProjector.screen(), out = [];
                 for (let k = 0; k < moves; k++) { const i = (k * 7919) % (s.length / 2), t0 = performance.now();
                   c.dispatchEvent(new MouseEvent('mousemove', { clientX: r.left + s[2 * i], clientY: r.top + s[2 * i + 1] }));
                   out.push(performance.now() - t0); } return out; }""", moves)
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--layer", type=int, default=6)
    args = parser.parse_args()
    store = Store.open(args.store)
    start = time.perf_counter()
    points = token_points(store, limit=args.points)
    x = point_vectors(store, points, [args.layer])[args.layer]
    read = time.perf_counter() - start
    print(f"{len(x):,} tokens of layer {args.layer} read from the store in {read:.1f} s")
    warm_up()
    from sklearn.manifold import trustworthiness as theirs

    from shatterbox.projector import trustworthiness as ours_trust

    sub, sub_map = x[:5000], x[:5000, :2]
    start = time.perf_counter()
    a = theirs(sub, sub_map, n_neighbors=10)
    t_theirs = time.perf_counter() - start
    start = time.perf_counter()
    b = ours_trust(sub, sub_map, 10)
    t_ours = time.perf_counter() - start
    print(f"trustworthiness@10 of 5,000 points: ours {t_ours:.2f} s in blocks of 256 rows, scikit-learn {t_theirs:.2f} s with two 5,000^2 matrices "
          f"(ratio {t_ours / t_theirs:.2f}; difference {abs(a - b):.1e}: scikit-learn ranks float32 distances, ours float64); at 20,000 points scikit-learn's matrices alone take 3.2 GB")
    maps = {}
    for method in ("pca", "umap"):
        theirs = bare(method, x)
        start = time.perf_counter()
        maps[method] = project(x, method, layer=args.layer)
        ours = time.perf_counter() - start
        print(f"{method}: ours {ours:.1f} s (map {maps[method].seconds:.1f} s + trustworthiness and k-NN recall), bare call {theirs:.1f} s, "
              f"ratio {ours / theirs:.2f}; trustworthiness@10 {maps[method].trustworthiness:.3f}, 10-NN recall {maps[method].recall:.3f}")
    page = Path(tempfile.mkdtemp()) / "map.html"
    page.write_text(projector_page(points, [maps["umap"]]), encoding="utf-8")
    times = frame_times(page)
    print(f"page {page.stat().st_size / 1e6:.1f} MB; hover over {len(x):,} points: median {statistics.median(times):.1f} ms per mouse move "
          f"(nearest point + full redraw), 95th percentile {sorted(times)[int(0.95 * len(times))]:.1f} ms")


if __name__ == "__main__":
    main()
