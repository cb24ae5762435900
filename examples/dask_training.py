"""Gradient descent on a dataset in row chunks, on a local Dask cluster of worker processes.

    python examples/dask_training.py [--rows 2000000] [--steps 20] [--workers 2]

The loss is plain numpy code; s2s generates its gradient for Dask arrays (no in-place
updates), so each step is one task graph with the loss and the gradient, computed once.
Open the dashboard address it prints to watch the workers.
"""
from __future__ import annotations

import argparse
import sys
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import s2s


def loss(w, b, X, y):
    """Mean logistic negative log-likelihood, with a small L2 penalty."""
    z = X @ w + b
    nll = np.mean(np.logaddexp(0.0, z) - y * z)
    return nll + 1e-3 * np.sum(w ** 2)


def dataset(rows: int, features: int, chunk_rows: int, seed: int = 0):
    """A synthetic classification problem, generated on the workers chunk by chunk."""
    rng = da.random.default_rng(seed)
    X = rng.normal(size=(rows, features), chunks=(chunk_rows, features))
    w_true = np.linspace(-1.0, 1.0, features)
    y = (X @ w_true + 0.5 * rng.normal(size=rows, chunks=chunk_rows) > 0).astype(float)
    return X, y


def progress(step: int, steps: int, value: float, seconds: float) -> None:
    done = int(30 * step / steps)
    sys.stdout.write(f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{steps}  loss {value:.5f}  "
                     f"{seconds:.2f} s/step")
    sys.stdout.flush()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster, \
            Client(cluster) as client:
        print(f"dashboard: {client.dashboard_link}")
        X, y = dataset(args.rows, args.features, args.chunk_rows)
        X, y = client.persist([X, y])  # generated once, kept in the workers' memory
        print(f"{args.rows} rows in {X.npartitions} chunks on {args.workers} worker processes")
        value_and_grad = s2s.value_and_grad(loss, argnums=(0, 1))
        w, b = np.zeros(args.features), 0.0
        for step in range(1, args.steps + 1):
            start = time.perf_counter()
            value, (dw, db) = dask.compute(*value_and_grad(w, b, X, y))
            w, b = w - args.lr * dw, b - args.lr * float(db)
            progress(step, args.steps, float(value), time.perf_counter() - start)
        print(f"\nw = {np.round(w, 3)}\nb = {b:.3f}")


if __name__ == "__main__":
    main()
