"""scikit-learn side of `npm run bench:segment`; run with Debian's /usr/bin/python3.

usage: sklearn_kmeans.py DATA N D K N_INIT MAX_ITER TOL SEED LABELS_OUT

Loads the n x d float64 little-endian matrix written by segment.ts with numpy.fromfile, prints
{"ready": true}, then serves one command per stdin line so the caller can interleave its own runs
with these (both sides then see the same machine load):
  fit   fit KMeans(init="k-means++", algorithm="lloyd") and print {"ms", "inertia", "nIter"};
        only fit() is timed, with time.perf_counter (start-up, imports, loading excluded)
  quit  write the labels of the last fit as int32 to LABELS_OUT, print {"version", "threads"}
"""
import json
import sys
import time

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info


def main() -> None:
    path, n, d, k, n_init, max_iter, tol, seed, labels_out = sys.argv[1:10]
    n, d, k, n_init, max_iter, seed = map(int, (n, d, k, n_init, max_iter, seed))
    X = np.fromfile(path, dtype="<f8").reshape(n, d)
    km = None
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "fit":
            km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, tol=float(tol), init="k-means++",
                        random_state=seed, algorithm="lloyd")
            t0 = time.perf_counter()
            km.fit(X)
            ms = (time.perf_counter() - t0) * 1000.0
            print(json.dumps({"ms": ms, "inertia": float(km.inertia_), "nIter": int(km.n_iter_)}), flush=True)
        elif cmd == "quit":
            if km is not None:
                km.labels_.astype("<i4").tofile(labels_out)
            threads = {}
            for info in threadpool_info():
                threads[info["user_api"]] = max(threads.get(info["user_api"], 0), info["num_threads"])
            print(json.dumps({"version": sklearn.__version__, "threads": threads}), flush=True)
            return


if __name__ == "__main__":
    main()
