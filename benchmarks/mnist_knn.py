"""revml's defaults against scikit-learn's KNNImputer on MNIST row-band damage.

Same damage as ``revml mnist`` (10 of 28 rows, seeded position) on the first N test digits;
KNNImputer (k=5) uses 10,000 training digits as references (all 60,000 is several times
slower on a 2-core CPU), revml trains its default AE on all 60,000. Writes
benchmarks/results/mnist_knn.json.

    python benchmarks/mnist_knn.py --data-dir ../shared/data/mnist --n-test 2000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sklearn.impute import KNNImputer

from revml import ReverseImputer, masks
from revml.datasets import load_mnist
from revml.experiments.mnist import environment
from revml.metrics import image_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--n-ref", type=int, default=10_000)
    ap.add_argument("--out", default="benchmarks/results/mnist_knn.json")
    args = ap.parse_args()
    train, _ = load_mnist(args.data_dir, train=True)
    test, _ = load_mnist(args.data_dir, train=False)
    test = test[: args.n_test]
    miss = masks.row_band(len(test), seed=0)
    damaged = masks.apply(test, miss)
    rows = []

    def add(method: str, pred, seconds: float) -> None:
        rows.append({"method": method, "seconds": seconds, **image_scores(pred, test, miss)})
        r = rows[-1]
        print(
            f"{method:<34} missing acc {r['missing_accuracy']:.4f}  rmse "
            f"{r['missing_rmse']:.4f}  image acc {r['image_accuracy']:.4f}  {seconds:.0f} s",
            flush=True,
        )

    t = time.perf_counter()
    knn = KNNImputer(n_neighbors=5).fit(train[: args.n_ref]).transform(damaged)
    add(f"KNNImputer k=5, {args.n_ref} references", knn, time.perf_counter() - t)
    t = time.perf_counter()
    imp = ReverseImputer(random_state=0).fit(train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    add(
        "revml defaults: direct AE",
        imp.set_params(strategy="direct").transform(damaged),
        time.perf_counter() - t,
    )
    t = time.perf_counter()
    add(
        "revml defaults: reverse training",
        imp.set_params(strategy="reverse").transform(damaged),
        time.perf_counter() - t,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "environment": environment(),
                "n_test": args.n_test,
                "fit_seconds": fit_s,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
