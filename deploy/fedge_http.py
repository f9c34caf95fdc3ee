#!/usr/bin/env python3
"""Host-side HTTP client of the container testbed and its tests (standard library only).

The testbed (deploy/testbed.sh), the fault tests (deploy/tests/faults.sh) and the cold-start
bench (deploy/bench-coldstart.sh) talk to the containers through this one file:

  rounds AGG_URL --until N [--timeout S]   wait until round N is recorded, print each round
                                           as it lands (the table `edge-cluster local` prints)
                                           and the summary table; exit 1 if a round failed
  classify SERVE_URL MNIST_DIR [--version V]
                                           wait for fn-serve to serve version >= V, classify
                                           MNIST's test set through it (V2 JSON, UINT8)
  big SERVE_URL MNIST_DIR --format json-fp32|binary-u8 [--n 10000] [--concurrent K]
                                           K concurrent N-image requests; print the status
                                           codes seen as JSON
  metric URL NAME                          one value from a Prometheus /metrics page
  memory CONTAINER                         its cgroup memory now, peak, limit
  wait URL [--timeout S]                   until GET URL answers 200
  coldstart ...                            see bench-coldstart.sh

Only loopback / container addresses of this machine are ever contacted.
"""

import argparse
import concurrent.futures
import gzip
import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request


def get(url, timeout=10.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def post(url, body, headers=None, timeout=300.0):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url, timeout=10.0):
    return json.loads(get(url, timeout)[1])


# ---- the round table, as `edge-cluster local` prints it ----------------------------------


def pct(v):
    return f"{v * 100:.2f}%"


def print_round(r):
    status = r["status"]
    if status == "initial":
        text = "initial model"
    elif status == "completed":
        text = f"completed -> v{r.get('version') or 0}"
    else:
        text = f"FAILED: {r.get('failure') or ''}"
    print(f"round {r['round']} [{r['strategy']}] {text}")
    clients = r.get("clients") or []
    if clients:
        print(f"  {'client':<10} {'examples':>8} {'loss':>9} {'accuracy':>9} {'train s':>8} "
              f"{'rtt s':>8} {'norm':>7}  status")
    for c in clients:
        st = c["status"]
        if st == "accepted":
            cst = "accepted"
        elif st == "rejected":
            cst = f"REJECTED: {c.get('reason')}"
        elif st == "failed":
            cst = f"FAILED: {c.get('reason')}"
        else:
            cst = f"TIMEOUT after {c.get('after_seconds', 0):.0f} s"
        loss = c.get("epoch_loss") or []
        acc = c.get("epoch_accuracy") or []
        norm = c.get("update_norm")
        print(f"  {c['client_id']:<10} {c.get('num_examples', 0):>8} "
              f"{(loss[-1] if loss else float('nan')):>9.4f} {(pct(acc[-1]) if acc else '-'):>9} "
              f"{c.get('train_seconds', 0):>8.2f} {c.get('round_trip_seconds', 0):>8.2f} "
              f"{('-' if norm is None else f'{norm:.2f}'):>7}  {cst}")
    g = r.get("global")
    if g:
        print(f"  global test: accuracy {pct(g['accuracy'])}  loss {g['loss']:.4f}  "
              f"({g['examples']} images)")
    t = r.get("timings") or {}
    tt = lambda k: t.get(k, 0.0)  # noqa: E731
    print(f"  round time {tt('total'):.2f} s = clients {tt('clients'):.2f} (training "
          f"{tt('training'):.2f}, transfer/other {tt('transfer'):.2f}) + validation "
          f"{tt('validation'):.3f} + aggregation {tt('aggregation'):.3f} + evaluation "
          f"{tt('evaluation'):.2f} + store {tt('store'):.3f}", flush=True)


def print_summary(history):
    print("\n round | status    | global acc | global loss | round s | train s | transfer s "
          "| aggr s | eval s")
    print("-------+-----------+------------+-------------+---------+---------+------------"
          "+--------+-------")
    for r in history:
        g = r.get("global")
        acc, loss = (pct(g["accuracy"]), f"{g['loss']:.4f}") if g else ("-", "-")
        t = r.get("timings") or {}
        print(f" {r['round']:>5} | {r['status']:<9} | {acc:>10} | {loss:>11} | "
              f"{t.get('total', 0):>7.2f} | {t.get('training', 0):>7.2f} | "
              f"{t.get('transfer', 0):>10.2f} | {t.get('aggregation', 0):>6.3f} | "
              f"{t.get('evaluation', 0):>6.2f}")


def cmd_rounds(a):
    deadline = time.monotonic() + a.timeout
    shown = a.since
    history = []
    while time.monotonic() < deadline:
        try:
            history = get_json(f"{a.url}/v1/rounds")
        except (OSError, ValueError):
            time.sleep(0.5)
            continue
        for r in history:
            if r["round"] > shown:
                print_round(r)
                shown = r["round"]
        if history and history[-1]["round"] >= a.until:
            if not a.quiet:
                print_summary(history)
            bad = [r["round"] for r in history if r["status"] == "failed"]
            return 1 if bad and not a.allow_failed else 0
        time.sleep(0.5)
    print(f"rounds: round {a.until} not recorded within {a.timeout:.0f} s", file=sys.stderr)
    return 2


# ---- MNIST test set and fn-serve -------------------------------------------------------


def load_test_set(mnist_dir):
    def read(name):
        for n in (name, name + ".gz"):
            p = os.path.join(mnist_dir, n)
            if os.path.exists(p):
                with (gzip.open if n.endswith(".gz") else open)(p, "rb") as f:
                    return f.read()
        raise FileNotFoundError(f"{name} in {mnist_dir}")

    img = read("t10k-images-idx3-ubyte")
    lab = read("t10k-labels-idx1-ubyte")
    n, rows, cols = struct.unpack(">III", img[4:16])
    return img[16:16 + n * rows * cols], lab[8:8 + n], n, rows, cols


def served_version(serve_url):
    try:
        v = get_json(f"{serve_url}/v2/models/mnist", timeout=5)
        vs = v.get("versions") or []
        return int(str(vs[0]).lstrip("v")) if vs else None
    except (OSError, ValueError, IndexError):
        return None


def v2_json_u8(pixels, n, rows, cols):
    body = {"inputs": [{"name": "input", "shape": [n, 1, rows, cols], "datatype": "UINT8",
                        "data": list(pixels)}], "outputs": [{"name": "class"}]}
    return json.dumps(body).encode(), {"content-type": "application/json"}


def v2_json_fp32(pixels, n, rows, cols):
    data = ",".join(repr(float(p) / 255.0) if p else "0.0" for p in pixels)
    head = json.dumps({"name": "input", "shape": [n, 1, rows, cols], "datatype": "FP32"})
    body = '{"inputs":[' + head[:-1] + ',"data":[' + data + ']}],"outputs":[{"name":"class"}]}'
    return body.encode(), {"content-type": "application/json"}


def v2_binary_u8(pixels, n, rows, cols):
    header = json.dumps({"inputs": [{"name": "input", "shape": [n, 1, rows, cols],
                                     "datatype": "UINT8",
                                     "parameters": {"binary_data_size": len(pixels)}}],
                         "outputs": [{"name": "class", "parameters": {"binary_data": False}}]})
    hb = header.encode()
    return hb + bytes(pixels), {"content-type": "application/octet-stream",
                                "inference-header-content-length": str(len(hb))}


def classes_of(status, body):
    if status != 200:
        raise RuntimeError(f"fn-serve answered {status}: {body[:300]!r}")
    out = json.loads(body)
    cls = next(o for o in out["outputs"] if o["name"] == "class")
    return cls["data"]


def cmd_classify(a):
    pixels, labels, n, rows, cols = load_test_set(a.mnist_dir)
    deadline = time.monotonic() + a.timeout
    v = served_version(a.url)
    while (v is None or (a.version is not None and v < a.version)) and time.monotonic() < deadline:
        time.sleep(0.2)
        v = served_version(a.url)
    if v is None or (a.version is not None and v < a.version):
        print(f"classify: fn-serve serves version {v}, wanted {a.version}", file=sys.stderr)
        return 2
    size = rows * cols
    correct = 0
    lat = []
    for start in range(0, n, a.batch):
        k = min(a.batch, n - start)
        body, headers = v2_json_u8(pixels[start * size:(start + k) * size], k, rows, cols)
        t = time.monotonic()
        got = classes_of(*post(f"{a.url}/v2/models/mnist/infer", body, headers))
        lat.append((time.monotonic() - t) * 1000)
        correct += sum(1 for i, c in enumerate(got) if c == labels[start + i])
    lat.sort()
    print(f"served: version {v}, {n} test images in requests of {a.batch}: accuracy "
          f"{pct(correct / n)}; request p50 {lat[len(lat) // 2]:.1f} ms, max {lat[-1]:.1f} ms")
    if a.expect_accuracy is not None and abs(correct / n - a.expect_accuracy) > 0.002:
        print(f"classify: served accuracy {correct / n:.4f} != the aggregator's "
              f"{a.expect_accuracy:.4f}", file=sys.stderr)
        return 1
    return 0


def send_reading(url, path, body, headers, timeout, expect_classes):
    """POSTs `body` while reading the reply, so a server that answers early (a 503 after part
    of the body, then closing) is seen answering; a client that reads only after sending
    everything sees a broken pipe instead. Returns the status, or `error:<what>`."""
    import socket
    import threading
    host, port = url.split("//", 1)[1].split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    req = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n{head}"
           "Connection: close\r\n\r\n").encode()
    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        return f"error:connect:{e.__class__.__name__}"

    def send():
        try:
            s.sendall(req)
            s.sendall(body)
        except OSError:
            pass  # the server answered and closed early: the reader has the answer

    t = threading.Thread(target=send, daemon=True)
    t.start()
    data = b""
    try:
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        if not data:
            return f"error:recv:{e.__class__.__name__}"
    finally:
        s.close()
    if not data.startswith(b"HTTP/1.1 "):
        return "error:no-status"
    status = int(data[9:12])
    if status == 200:
        payload = data.split(b"\r\n\r\n", 1)[1]
        if b"transfer-encoding: chunked" in data.split(b"\r\n\r\n", 1)[0].lower():
            out, rest = b"", payload
            while rest:
                size_line, rest = rest.split(b"\r\n", 1)
                size = int(size_line, 16)
                if size == 0:
                    break
                out, rest = out + rest[:size], rest[size + 2:]
            payload = out
        if len(classes_of(200, payload)) != expect_classes:
            return "short"
    return status


def cmd_big(a):
    pixels, _, n, rows, cols = load_test_set(a.mnist_dir)
    k = min(a.n, n)
    make = {"json-fp32": v2_json_fp32, "binary-u8": v2_binary_u8}[a.format]
    body, headers = make(pixels[:k * rows * cols], k, rows, cols)

    def one(_):
        return send_reading(a.url, "/v2/models/mnist/infer", body, headers, a.timeout, k)

    with concurrent.futures.ThreadPoolExecutor(a.concurrent) as ex:
        seen = list(ex.map(one, range(a.concurrent)))
    counts = {}
    for s in seen:
        counts[str(s)] = counts.get(str(s), 0) + 1
    print(json.dumps({"body_bytes": len(body), "statuses": counts}))
    return 0


def cmd_metric(a):
    _, text = get(a.url)
    for line in text.decode().splitlines():
        if line.startswith(a.name + " ") or line.startswith(a.name + "{"):
            print(line.rsplit(" ", 1)[1])
            return 0
    return 1


def cmd_wait(a):
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        try:
            if get(a.url, timeout=2)[0] == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.1)
    print(f"wait: {a.url} not answering 200 after {a.timeout:.0f} s", file=sys.stderr)
    return 1


# ---- cold start ------------------------------------------------------------------------


def poll_until_200(host, port, path, body, deadline):
    """Polls with raw sockets (~1 ms apart) until the request answers 200."""
    import socket
    req = (f"{'POST' if body else 'GET'} {path} HTTP/1.1\r\nHost: {host}\r\n"
           f"Content-Type: application/json\r\nContent-Length: {len(body or b'')}\r\n"
           "Connection: close\r\n\r\n").encode() + (body or b"")
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(req)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.001)
    return False


def cmd_coldstart(a):
    """Times `a.cmd` (a JSON argv) from spawn to the first 200 of the probe, `a.runs` times.

    With --container the argv is a `docker run -d ...`: it prints the container id, which is
    removed (`docker rm -f`) after each run; otherwise the process gets SIGTERM."""
    argv = json.loads(a.cmd)
    body = None
    if a.predict:
        pixels, _, _, rows, cols = load_test_set(a.mnist_dir)
        body, _ = v2_json_u8(pixels[:rows * cols], 1, rows, cols)
    times, idle = [], []
    for i in range(a.runs):
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if a.container else subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        ok = poll_until_200(a.host, a.port, a.path, body, t0 + 60)
        times.append((time.monotonic() - t0) * 1000)
        if a.container:
            cid = proc.communicate(timeout=60)[0].decode().strip()
            mem = cgroup_memory(cid)
            if mem is not None:
                idle.append(mem)
            subprocess.run(["docker", "rm", "-f", cid], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        else:
            idle.append(rss_of(proc.pid))
            proc.terminate()
            proc.wait(timeout=30)
        if not ok:
            raise RuntimeError(f"run {i}: no 200 within 60 s")
    times.sort()
    p = lambda q: times[min(len(times) - 1, int(round((len(times) - 1) * q)))]  # noqa: E731
    out = {"runs": len(times), "median_ms": round(p(0.5), 1), "p90_ms": round(p(0.9), 1),
           "min_ms": round(times[0], 1), "max_ms": round(times[-1], 1)}
    if idle:
        idle.sort()
        out["memory_after_first_response_mib"] = round(idle[len(idle) // 2] / 2**20, 1)
    print(json.dumps(out), flush=True)
    return 0


def cgroup_file(cid, v1, v2):
    """An integer file of a container's memory cgroup (v1 name, v2 name); None if unreadable."""
    for path in (f"/sys/fs/cgroup/memory/docker/{cid}/{v1}",
                 f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/{v2}"):
        try:
            with open(path) as f:
                return int(f.read())
        except OSError:
            pass
    return None


def cgroup_memory(cid):
    """A container's memory use now, bytes."""
    return cgroup_file(cid, "memory.usage_in_bytes", "memory.current")


def cgroup_peak(cid):
    """A container's peak memory use since it started, bytes."""
    return cgroup_file(cid, "memory.max_usage_in_bytes", "memory.peak")


def cmd_memory(a):
    cid = subprocess.check_output(["docker", "inspect", "-f", "{{.Id}}", a.container]).decode().strip()
    name = subprocess.check_output(["docker", "inspect", "-f", "{{.Name}}", cid]).decode().strip()
    limit = int(subprocess.check_output(["docker", "inspect", "-f", "{{.HostConfig.Memory}}", cid]))
    mib = lambda b: "-" if b is None else f"{b / 2**20:.1f} MiB"  # noqa: E731
    print(f"  {name.lstrip('/')}: {mib(cgroup_memory(cid))} / {mib(cgroup_peak(cid))} / "
          f"{mib(limit or None)}")
    return 0


def rss_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("rounds")
    p.add_argument("url")
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--since", type=int, default=-1, help="print rounds after this one")
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--allow-failed", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no summary table")
    p.set_defaults(f=cmd_rounds)
    p = sub.add_parser("classify")
    p.add_argument("url")
    p.add_argument("mnist_dir")
    p.add_argument("--version", type=int)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--expect-accuracy", type=float)
    p.set_defaults(f=cmd_classify)
    p = sub.add_parser("big")
    p.add_argument("url")
    p.add_argument("mnist_dir")
    p.add_argument("--format", choices=["json-fp32", "binary-u8"], required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--concurrent", type=int, default=1)
    p.add_argument("--timeout", type=float, default=300)
    p.set_defaults(f=cmd_big)
    p = sub.add_parser("metric")
    p.add_argument("url")
    p.add_argument("name")
    p.set_defaults(f=cmd_metric)
    p = sub.add_parser("memory")
    p.add_argument("container")
    p.set_defaults(f=cmd_memory)
    p = sub.add_parser("wait")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=60)
    p.set_defaults(f=cmd_wait)
    p = sub.add_parser("coldstart")
    p.add_argument("--cmd", required=True, help="JSON argv that starts the server")
    p.add_argument("--container", action="store_true", help="--cmd is `docker run -d`")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--predict", action="store_true", help="POST one MNIST image to --path")
    p.add_argument("--mnist-dir", default=os.environ.get("MNIST_DIR"))
    p.add_argument("--runs", type=int, default=21)
    p.set_defaults(f=cmd_coldstart)
    a = ap.parse_args()
    sys.exit(a.f(a))


if __name__ == "__main__":
    main()
