"""Trains the Table 1 CNN in TensorFlow/Keras, the paper's framework, as a
reference for the engine's one-epoch accuracy.

Not part of the build or CI: it needs `pip install tensorflow-cpu numpy`.

    MNIST_DIR=../shared/data/mnist python3 engine/tools/keras_reference.py --seeds 0 1 2

Reads the same gzip IDX files as the engine, scales pixels by 1/255, and
trains with the settings of issue 3 (one epoch, batch 64, Adam 1e-3, Keras
defaults otherwise), printing one test accuracy per seed.
"""

import argparse
import gzip
import os
import struct
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(dir_, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(dir_, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(stem)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()

    import tensorflow as tf
    from tensorflow import keras

    d = os.environ["MNIST_DIR"]
    x_train = read_idx(find(d, "train-images-idx3-ubyte")).astype("float32")[..., None] / 255.0
    y_train = read_idx(find(d, "train-labels-idx1-ubyte")).astype("int64")
    x_test = read_idx(find(d, "t10k-images-idx3-ubyte")).astype("float32")[..., None] / 255.0
    y_test = read_idx(find(d, "t10k-labels-idx1-ubyte")).astype("int64")

    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Conv2D(32, 5, activation="relu", name="conv1"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Dropout(0.25),
                keras.layers.Conv2D(64, 5, activation="relu", name="conv2"),
                keras.layers.MaxPooling2D(2),
                keras.layers.Flatten(),
                keras.layers.Dense(256, activation="relu", name="fc1"),
                keras.layers.Dropout(0.25),
                keras.layers.Dense(10, activation="softmax", name="fc2"),
            ]
        )
        assert model.count_params() == 317_066
        model.compile(
            optimizer=keras.optimizers.Adam(args.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        t = time.time()
        hist = model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
        secs = time.time() - t
        loss, acc = model.evaluate(x_test, y_test, verbose=0)
        train_loss = hist.history["loss"][-1]
        train_acc = hist.history["accuracy"][-1]
        print(
            f"seed {seed}: test accuracy {acc * 100:.2f} %, loss {loss:.4f}; "
            f"last epoch train loss {train_loss:.4f}, accuracy {train_acc * 100:.2f} %; train {secs:.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
