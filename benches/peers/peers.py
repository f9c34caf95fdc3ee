"""The Table 1 CNN in ONNX Runtime, PyTorch and TensorFlow-Keras, beside fedge, in one run.

Reads what `peer_bench export DIR` wrote (our weights as safetensors, test images, our
probabilities), builds each peer that is installed from those same weights, checks that it
reproduces our probabilities, then times every system in alternating rounds (fedge via
`peer_bench time DIR`, then each peer, then fedge again ...) on whatever core the caller
pinned us to, and prints medians over rounds and the ratios fedge / peer.

Every system is timed by the same rule (`median_call`): warm-up calls, then calls until
both a minimum count and a minimum time are reached; the figure is the median call. Peers
get f32 input already divided by 255 (fedge converts its u8 input inside the timed call).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import load_file

INFER_BATCHES = [1, 32, 500, 10_000]
# FLOPs per image (a multiply-add is 2): conv1 0.9216 M, conv2 6.5536 M, fc1 0.5243 M,
# fc2 0.0051 M forward; a training image adds both gradients of every layer but conv1's
# input gradient (see ../shared/docs/kernel-limits.md).
FORWARD_MFLOP = 0.9216 + 6.5536 + 0.524288 + 0.00512
TRAIN_MFLOP = FORWARD_MFLOP + 0.9216 + 2 * (6.5536 + 0.524288 + 0.00512)
TRAIN_BATCH = 64
TOLERANCE = 1e-4


def median_call(f, warmup, min_calls, min_time):
    for _ in range(warmup):
        f()
    times = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_time:
        t = time.process_time()
        f()
        times.append(time.process_time() - t)
    return statistics.median(times)


def infer_rule(n):
    return (1, 3, 0.0) if n >= 10_000 else (3, 10, 1.0)


# ---------------------------------------------------------------- ONNX Runtime
def onnx_model(w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], kernel_shape=[5, 5]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "table1_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def make_onnxruntime(w, out_dir):
    import onnxruntime as ort

    model = onnx_model(w)
    path = os.path.join(out_dir, "table1_cnn.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return {
        "version": ort.__version__,
        "infer": lambda x: sess.run(["probs"], {"x": x})[0],
        "train": None,
    }


# ---------------------------------------------------------------- PyTorch
def make_torch(w, out_dir):
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    class Table1(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 5)
            self.conv2 = nn.Conv2d(32, 64, 5)
            self.fc1 = nn.Linear(1024, 256)
            self.fc2 = nn.Linear(256, 10)
            self.drop = nn.Dropout(0.25)

        def forward(self, x):
            x = self.drop(torch.max_pool2d(torch.relu(self.conv1(x)), 2))
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2).flatten(1)
            return self.fc2(self.drop(torch.relu(self.fc1(x))))

    model = Table1()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()})
    torch.save(model.state_dict(), os.path.join(out_dir, "table1_cnn.pt"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def infer(x):
        model.eval()
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()

    def train(x, y):
        model.train()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()

    return {"version": torch.__version__, "infer": infer, "train": train}


# ---------------------------------------------------------------- TensorFlow-Keras
def make_keras(w, out_dir):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras = tf.keras
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 5, activation="relu", name="conv1"),
            L.MaxPooling2D(2),
            L.Dropout(0.25),
            L.Conv2D(64, 5, activation="relu", name="conv2"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(256, activation="relu", name="fc1"),
            L.Dropout(0.25),
            L.Dense(10, activation="softmax", name="fc2"),
        ]
    )
    # OIHW -> HWIO; fc1's inputs are (c, h, w) in ours and (h, w, c) after Keras's flatten.
    fc1 = w["fc1.weight"].reshape(256, 64, 4, 4).transpose(2, 3, 1, 0).reshape(1024, 256)
    model.get_layer("conv1").set_weights([w["conv1.weight"].transpose(2, 3, 1, 0), w["conv1.bias"]])
    model.get_layer("conv2").set_weights([w["conv2.weight"].transpose(2, 3, 1, 0), w["conv2.bias"]])
    model.get_layer("fc1").set_weights([fc1, w["fc1.bias"]])
    model.get_layer("fc2").set_weights([w["fc2.weight"].T, w["fc2.bias"]])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def infer(x):
        return call(tf.constant(x.transpose(0, 2, 3, 1))).numpy()

    def train(x, y):
        model.train_on_batch(x.transpose(0, 2, 3, 1), y)

    return {"version": f"tf {tf.__version__} / keras {keras.__version__}", "infer": infer, "train": train}


PEERS = [("onnxruntime", make_onnxruntime), ("pytorch", make_torch), ("tf-keras", make_keras)]


def run_fedge(peer_bench, data_dir):
    out = subprocess.run([peer_bench, "time", data_dir], check=True, capture_output=True, text=True)
    res = {}
    for line in out.stdout.splitlines():
        r = json.loads(line)
        if r["what"] == "peak":
            res[("peak", r["isa"])] = r["gflops"]
        else:
            res[(r["what"], r["batch"])] = r["seconds"]
    return res


def time_peer(peer, xs, ytrain):
    res = {}
    for n in INFER_BATCHES:
        res[("infer", n)] = median_call(lambda: peer["infer"](xs[n]), *infer_rule(n))
    if peer["train"] is not None:
        x, y = ytrain
        res[("train", TRAIN_BATCH)] = median_call(lambda: peer["train"](x, y), 3, 20, 2.0)
    return res


def rate(what, n, seconds):
    """ms per call for batch 1, images/s otherwise."""
    return seconds * 1e3 if (what, n) == ("infer", 1) else n / seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="directory written by `peer_bench export`")
    ap.add_argument("--peer-bench", required=True, help="path of the peer_bench binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the medians here")
    args = ap.parse_args()

    w = load_file(os.path.join(args.data, "model.safetensors"))
    images = np.fromfile(os.path.join(args.data, "images.u8"), dtype=np.uint8)
    ours = np.fromfile(os.path.join(args.data, "probs.f32"), dtype="<f4").reshape(-1, 10)
    x_check = (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)

    peers, missing = {}, {}
    for name, make in PEERS:
        try:
            peer = make(w, args.data)
        except ImportError as e:
            missing[name] = f"not installed ({e.name})"
            continue
        got = peer["infer"](x_check)
        diff = float(np.abs(got - ours).max())
        agree = int((got.argmax(1) == ours.argmax(1)).sum())
        print(f"check {name} {peer['version']}: max |p - p_fedge| = {diff:.2e}, argmax agrees on {agree}/{len(ours)}")
        if diff > TOLERANCE or agree != len(ours):
            sys.exit(f"{name} disagrees with fedge on the same weights and images")
        peers[name] = peer
    for name, why in missing.items():
        print(f"peer {name}: MISSING, {why}")

    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, size=(10_000, 1, 28, 28), dtype=np.uint8).astype(np.float32) / 255.0
    xs = {n: np.ascontiguousarray(big[:n]) for n in INFER_BATCHES}
    ytrain = (np.ascontiguousarray(big[:TRAIN_BATCH]), rng.integers(0, 10, TRAIN_BATCH).astype(np.int32))

    samples = {}
    for r in range(args.rounds):
        for name in ["fedge", *peers]:
            res = run_fedge(args.peer_bench, args.data) if name == "fedge" else time_peer(peers[name], xs, ytrain)
            for key, s in res.items():
                samples.setdefault(name, {}).setdefault(key, []).append(s)
            print(f"round {r + 1}: {name} done", flush=True)

    med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in samples.items()}
    peak_key = next(k for k in med["fedge"] if k[0] == "peak")
    peak = max(samples["fedge"][peak_key])
    cols = [("train", TRAIN_BATCH)] + [("infer", n) for n in INFER_BATCHES]
    head = ["train step b64 Adam (img/s)", "infer b1 (ms)", "b32 (img/s)", "b500 (img/s)", "b10000 (img/s)"]
    print()
    print("| one thread, same core, Table 1 CNN | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    versions = {n: p["version"] for n, p in peers.items()}
    for name in ["fedge", *peers]:
        cells = []
        for k in cols:
            s = med[name].get(k)
            cells.append("-" if s is None else f"{rate(*k, s):,.3f}" if k == ("infer", 1) else f"{rate(*k, s):,.0f}")
        label = name if name == "fedge" else f"{name} {versions[name]}"
        print(f"| {label} | " + " | ".join(cells) + " |")
    for name in peers:
        cells = []
        for k in cols:
            a, b = med["fedge"].get(k), med[name].get(k)
            # Speed ratio fedge / peer: > 1 means fedge is faster (for latency too).
            cells.append("-" if a is None or b is None else f"{b / a:.2f}x")
        print(f"| fedge / {name} | " + " | ".join(cells) + " |")
    for name, why in missing.items():
        print(f"| {name} | MISSING: {why} |")
    print()
    print(f"FMA peak of this core, {peak_key[1]} tier (best of the rounds): {peak:.1f} GFLOP/s")
    print("| % of that peak | " + " | ".join(head) + " |")
    print("|---" * (len(head) + 1) + "|")
    for name in ["fedge", *peers]:
        cells = []
        for what, n in cols:
            s = med[name].get((what, n))
            mflop = TRAIN_MFLOP if what == "train" else FORWARD_MFLOP
            cells.append("-" if s is None else f"{100 * n * mflop * 1e6 / s / 1e9 / peak:.0f} %")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({n: {f"{k[0]}_{k[1]}": s for k, s in d.items()} for n, d in med.items()}, f, indent=1)


if __name__ == "__main__":
    main()
