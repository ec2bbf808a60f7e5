#!/usr/bin/env python3
"""Write experiments/data/digits.csv: the UCI optical handwritten digits (8x8 images, 1797
samples, 10 classes), as bundled in scikit-learn's wheel (sklearn/datasets/data/digits.csv.gz,
the data behind sklearn.datasets.load_digits).

The wheel is fetched with `pip download` (no install, no dependencies). Each row of the
output is the 64 pixels scaled from 0..16 to 0..1 (exact in decimal: multiples of 1/16),
then the class label. Rows keep the data set's order; training draws them in a fresh random
order each epoch, and the evaluation batch is the first rows.

Source: Alpaydin & Kaynak 1998, UCI Machine Learning Repository, CC BY 4.0.

    python3 scripts/make_digits.py
"""

import csv
import glob
import gzip
import io
import os
import subprocess
import sys
import tempfile
import zipfile

OUT = os.path.join(os.path.dirname(__file__), "..", "experiments", "data", "digits.csv")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "scikit-learn", "--no-deps",
             "--only-binary=:all:", "-q", "-d", tmp],
            check=True,
        )
        wheel = glob.glob(os.path.join(tmp, "scikit_learn-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            raw = gzip.decompress(z.read("sklearn/datasets/data/digits.csv.gz")).decode()
    rows = list(csv.reader(io.StringIO(raw)))
    assert len(rows) == 1797 and all(len(r) == 65 for r in rows), "unexpected digits.csv"
    with open(OUT, "w", newline="") as f:
        f.write(",".join([f"p{i}" for i in range(64)] + ["label"]) + "\n")
        for r in rows:
            pixels = [int(float(v)) for v in r[:64]]
            label = int(float(r[64]))
            assert all(0 <= p <= 16 for p in pixels) and 0 <= label <= 9
            f.write(",".join(f"{p / 16:g}" for p in pixels) + f",{label}\n")
    print(f"wrote {OUT}: {len(rows)} rows of 64 pixels and a label")


if __name__ == "__main__":
    main()
