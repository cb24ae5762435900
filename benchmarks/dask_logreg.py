"""Logistic-regression gradient over row-chunked data: s2s on Dask against dask-glm.

    python -m benchmarks.dask_logreg [--rows 1000000,10000000] [--workers 2] [--repeats 5]

In one run, on one ``LocalCluster`` of worker processes (one thread each), with the
data generated on the workers and persisted before timing: the gradient s2s generates
for the loss below, computed on the Dask arrays; dask-glm's hand-written gradient
(``dask_glm.families.Logistic.pointwise_gradient``) on the same arrays; and the s2s
gradient on numpy arrays in this process. Both Dask gradients are checked against
the numpy one first. Medians of ``--repeats`` timings, and their ratios.
"""
from __future__ import annotations

import argparse
import statistics
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import s2s


def loss(beta, X, y):
    """dask-glm's logistic log-likelihood, written as numpy."""
    Xbeta = X @ beta
    return np.sum(Xbeta + np.log1p(np.exp(-Xbeta))) - y @ Xbeta


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(rows: int, features: int, chunk_rows: int, repeats: int, client) -> dict:
    from dask_glm.families import Logistic

    rng = da.random.default_rng(0)
    X = rng.normal(size=(rows, features), chunks=(chunk_rows, features))
    y = (rng.random(size=rows, chunks=chunk_rows) > 0.5).astype(float)
    X, y = client.persist([X, y])
    beta = np.linspace(-0.1, 0.1, features)
    grad = s2s.grad(loss)
    Xn, yn = client.compute([X, y], sync=True)
    expected = grad(beta, Xn, yn)
    np.testing.assert_allclose(client.compute(grad(beta, X, y), sync=True), expected, rtol=1e-8)
    np.testing.assert_allclose(client.compute(Logistic.pointwise_gradient(beta, X, y), sync=True),
                               expected, rtol=1e-8)
    return {
        "s2s_dask": median_seconds(lambda: client.compute(grad(beta, X, y), sync=True), repeats),
        "dask_glm": median_seconds(
            lambda: client.compute(Logistic.pointwise_gradient(beta, X, y), sync=True), repeats),
        "s2s_numpy": median_seconds(lambda: grad(beta, Xn, yn), repeats),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    dask.config.set({"distributed.worker.daemon": False})
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"{args.workers} worker processes, 1 thread each; {args.features} features, "
              f"chunks of {args.chunk_rows} rows; medians of {args.repeats}")
        print(f"{'rows':>10}  {'s2s dask':>9}  {'dask-glm':>9}  {'numpy':>9}  "
              f"{'s2s/dask-glm':>12}  {'s2s/numpy':>9}")
        for rows in (int(r) for r in args.rows.split(",")):
            t = run(rows, args.features, args.chunk_rows, args.repeats, client)
            print(f"{rows:>10}  {t['s2s_dask']:>8.3f}s  {t['dask_glm']:>8.3f}s  "
                  f"{t['s2s_numpy']:>8.3f}s  {t['s2s_dask'] / t['dask_glm']:>11.2f}x  "
                  f"{t['s2s_dask'] / t['s2s_numpy']:>8.2f}x")


if __name__ == "__main__":
    main()
