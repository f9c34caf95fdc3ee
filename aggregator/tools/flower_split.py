"""Writes the partition Flower Datasets' DirichletPartitioner makes of MNIST's training
set, as a JSON file `edge-cluster local --partition file:PATH` reads, so the local cluster
can be compared with a Flower run on exactly the same split.

Not part of the build or CI: it needs `pip install flwr-datasets numpy`.

    python3 aggregator/tools/flower_split.py --mnist-dir ../shared/data/mnist \
        --clients 3 --alpha 0.5 --seed 0 --out /tmp/flower-dirichlet-seed0.json

The labels are read from the IDX file in its own order (the order of Hugging Face's
`mnist` train split), wrapped in a `datasets.Dataset`, and partitioned with Flower's
defaults (min_partition_size 10, self_balancing off, shuffle on).
"""

import argparse
import gzip
import json
import os
import struct

import datasets
import numpy as np
from flwr_datasets.partitioner import DirichletPartitioner


def read_labels(mnist_dir):
    for name in ("train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"):
        path = os.path.join(mnist_dir, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            magic, count = struct.unpack(">II", data[:8])
            assert magic == 0x801, f"{path}: not an IDX label file"
            return np.frombuffer(data, np.uint8, count, offset=8)
    raise FileNotFoundError(f"no train-labels-idx1-ubyte[.gz] in {mnist_dir}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR"))
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    labels = read_labels(args.mnist_dir)
    partitioner = DirichletPartitioner(
        num_partitions=args.clients, partition_by="label", alpha=args.alpha, seed=args.seed
    )
    partitioner.dataset = datasets.Dataset.from_dict({"label": labels.astype(np.int64)})
    partitioner.load_partition(0)  # draws every client's part at once
    # Flower keeps the drawn index lists in a private map (flwr-datasets 0.6); the checks
    # below catch a change of its shape.
    by_client = partitioner._partition_id_to_indices
    lists = [sorted(int(i) for i in by_client[c]) for c in range(args.clients)]
    assert sorted(i for l in lists for i in l) == list(range(len(labels)))
    for c, l in enumerate(lists):
        assert len(l) == partitioner.load_partition(c).num_rows
    with open(args.out, "w") as f:
        json.dump(lists, f)
    for c, l in enumerate(lists):
        print(f"client {c}: {len(l)} examples, per label {np.bincount(labels[l], minlength=10).tolist()}")


if __name__ == "__main__":
    main()
