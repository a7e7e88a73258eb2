"""Prepared, memory-mapped real data at full size: load time and memory per worker.

A 100 000-image, 128 px grayscale PNG dataset (a generic manifest: labels, patient groups,
masks on 5 % of the images) is fabricated on the fly in a temporary folder (never
committed), prepared once (decode + resize + quantise into the uint8 cache, 2 processes),
then loaded in fresh worker processes, two at a time as a run with ``--workers 2`` would.

Reported (``-s``): preparation throughput; per worker the load time (as a ratio to the
5-s goal), resident memory after the load (as a ratio to the 1-GB goal and to the float32
dataset the direct loader would hold), split the ``/proc`` way into private (``RssAnon``)
and shared file-backed (``RssFile``, the page cache all workers share); the same after
reading 20 random batches of 256 images; and ``split_hash()`` (stored fingerprints).

Run: ``python -m pytest benchmarks/test_bench_data.py -s -k prepare_then_load`` (about 16 minutes on
2 shared cores; ``XALBENCH_BENCH_DATA_N`` changes the size). Assertion: the memory goal only.
Measured once (2 cores at load average ≈ 12): prepared at 206 images/s with 2 processes (1.73 GB
cache); load 2.7 s and 3.7 s in two concurrent workers (0.53× / 0.74× the goal); RSS after the
load 565 MB (0.55× the goal, 0.090× the 6.6 GB float32 dataset; 16 MB more than after the
imports), 1.1 GB after 20 random batches, of which 0.75 GB is shared page cache.

``test_bench_paper_suite_compute`` measures per-image CPU costs of the paper backbones at 224 px
and scales them to each paper-grade suite (the GPU-hour estimates in the suites' descriptions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

N = int(os.environ.get("XALBENCH_BENCH_DATA_N", "100000"))
SIZE = 128
GOAL_LOAD_S, GOAL_RSS_MB = 5.0, 1024.0
pytestmark = pytest.mark.slow


def _write_shard(folder: str, start: int, stop: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(start)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(start, stop):
        cy, cx, r = rng.integers(20, SIZE - 20, 2).tolist() + [int(rng.integers(6, 18))]
        img = (40 + 0.4 * xx + 30 * ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * (1 + i % 3)).astype(np.uint8)
        Image.fromarray(img).save(out / f"img{i:06d}.png", compress_level=1)
        if i % 20 == 0:
            Image.fromarray((((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) * 255).astype(np.uint8)).save(
                out / f"mask{i:06d}.png", compress_level=1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from joblib import Parallel, delayed

    root = tmp_path_factory.mktemp("bench-data")
    t0 = time.perf_counter()
    shards = [(str(root / "images" / f"{s // 1000:03d}"), s, min(N, s + 1000)) for s in range(0, N, 1000)]
    Parallel(n_jobs=2)(delayed(_write_shard)(*a) for a in shards)
    rows = pd.DataFrame({
        "image_path": [f"images/{i // 1000:03d}/img{i:06d}.png" for i in range(N)],
        "mask_path": [f"images/{i // 1000:03d}/mask{i:06d}.png" if i % 20 == 0 else "" for i in range(N)],
        "group_id": [f"patient{i // 3}" for i in range(N)],
        "label": [str(i % 3) for i in range(N)],
    })
    rows.to_csv(root / "manifest.csv", index=False)
    print(f"\nfabricated {N} PNGs in {time.perf_counter() - t0:.0f} s under {root}")
    return root


_WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np

    def status():
        out = {}
        for line in open("/proc/self/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0]) / 1024.0
        return out

    import torch
    from xalbench.data.real import ManifestDataset
    torch.set_num_threads(1)
    base = status()
    t0 = time.perf_counter()
    size, n_images = int(sys.argv[4]), int(sys.argv[5])
    b = ManifestDataset({"path": sys.argv[1], "size": size, "in_memory_mb": 256}).load(sys.argv[2])
    load_s = time.perf_counter() - t0
    after_load = status()
    t0 = time.perf_counter()
    h = b.split_hash()
    hash_s = time.perf_counter() - t0
    rng = np.random.default_rng(int(sys.argv[3]))
    t0 = time.perf_counter()
    for _ in range(20):
        x = b.train.images[np.sort(rng.choice(len(b.train), 256, replace=False))]
    batch_ms = (time.perf_counter() - t0) / 20 * 1000
    print(json.dumps({"base": base, "after_load": after_load, "after_batches": status(), "load_s": load_s,
                      "hash_s": hash_s, "batch_ms": batch_ms, "n": sum(len(s) for s in (b.train, b.val, b.test)),
                      "mapped": type(b.train.images).__name__, "float32_gb": 4.0 * n_images * size * size / 1e9,
                      "hash": h[:12], "batch_shape": list(x.shape)}))
""")


@pytest.fixture(scope="module")
def prepared_root(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The data root with the dataset prepared once (shared by this module's tests), and a timing line."""
    from xalbench.data import prepared
    from xalbench.data.real import ManifestDataset

    data_root = tmp_path_factory.mktemp("root")
    ds = ManifestDataset({"path": str(dataset / "manifest.csv"), "size": SIZE})
    t0 = time.perf_counter()
    plan = ds.make_plan(str(data_root))
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = prepared.prepare(plan, prepared.cache_root(str(data_root)), n_jobs=2, progress=False)
    prep_s = time.perf_counter() - t0
    disk_gb = sum(p.stat().st_size for p in out.iterdir()) / 1e9
    return data_root, (f"plan {plan_s:.1f} s; prepared {plan.n} images in {prep_s:.0f} s ({plan.n / prep_s:.0f} "
                       f"img/s, 2 processes), cache {disk_gb:.2f} GB")


def test_bench_prepare_then_load(dataset: Path, prepared_root: tuple[Path, str], tmp_path: Path) -> None:
    data_root, timing = prepared_root
    print(timing)
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(dataset / "manifest.csv"), str(data_root), str(seed),
                               str(SIZE), str(N)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for seed in (0, 1)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=900)
        assert p.returncode == 0, stderr[-2000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    for i, r in enumerate(results):
        load, batches = r["after_load"], r["after_batches"]
        print(f"worker {i}: {r['n']} images ({r['mapped']}); load {r['load_s']:.2f} s = "
              f"{r['load_s'] / GOAL_LOAD_S:.2f}× the 5-s goal; RSS after imports {r['base']['VmRSS']:.0f} MB, "
              f"after load {load['VmRSS']:.0f} MB = {load['VmRSS'] / GOAL_RSS_MB:.2f}× the 1-GB goal = "
              f"{load['VmRSS'] / 1024 / (r['float32_gb'] / 1.073741824):.3f}× the float32 dataset "
              f"({r['float32_gb']:.1f} GB) [private {load['RssAnon']:.0f} MB, shared file {load['RssFile']:.0f} MB]; "
              f"after 20 random 256-image batches ({r['batch_ms']:.0f} ms each) {batches['VmRSS']:.0f} MB "
              f"[private {batches['RssAnon']:.0f}, shared {batches['RssFile']:.0f}]; peak {batches['VmHWM']:.0f} MB; "
              f"split_hash {r['hash_s'] * 1000:.0f} ms")
    assert results[0]["hash"] == results[1]["hash"]
    assert all(r["after_load"]["VmRSS"] < GOAL_RSS_MB for r in results)


# ------------------------------------------------------------------- a harness cell on the mapped pool
CELL_SUITE = """
name = "bench-mapped-pool"
description = "one AL round of {strategy} on the prepared 128-px manifest dataset (mapped, never in RAM)"
seeds = [0]
strategies = ["{strategy}"]
losses = ["ce"]

[model]
name = "small-cnn"
options = {{ width = 8, n_blocks = 3 }}

[explainer]
name = "gradcam"

[protocol]
base = "aeig"
initial = 200
rounds = 1
query_size = 100

[training]
epochs = 1
batch_size = 32
eval_batch_size = 256

[[datasets]]
name = "manifest"
label = "bench"
options = {{ path = "{csv}", size = {size}, in_memory_mb = 0 }}
"""

_CELL = textwrap.dedent("""
    import json, os, sys, threading, time

    def status(pid):
        out = {}
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "RssAnon", "RssFile", "PPid"):
                        out[k] = int(v.split()[0]) / (1024.0 if k != "PPid" else 1.0)
        except OSError:
            pass
        return out

    def cmdline(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                return fh.read().replace(b"\\0", b" ").decode(errors="replace")
        except OSError:
            return ""

    PEAK = {}  # pid -> {"role", "VmHWM", peaks of the samples of "RssAnon", "RssFile", "PrivateAnon"}

    def private_anon(pid):
        # MiB of private dirty pages in anonymous mappings (copies, arenas), not shared with the fork server
        total, file_backed = 0, False
        try:
            with open(f"/proc/{pid}/smaps") as fh:
                for line in fh:
                    parts = line.split()
                    if parts and "-" in parts[0] and not parts[0].endswith(":"):
                        file_backed = len(parts) > 5 and parts[5].startswith("/")
                    elif parts and parts[0] == "Private_Dirty:" and not file_backed:
                        total += int(parts[1])
        except OSError:
            pass
        return total / 1024.0

    def monitor(stop):
        me, tick = os.getpid(), 0
        while not stop.is_set():
            tick += 1
            procs = {}
            for name in os.listdir("/proc"):
                if name.isdigit():
                    st = status(int(name))
                    if st:
                        procs[int(name)] = st
            family, grew = {me}, True
            while grew:
                new = {p for p, st in procs.items() if st.get("PPid") in family} - family
                family |= new
                grew = bool(new)
            for pid in family:
                st = procs[pid]
                parent = int(st["PPid"])
                if pid == me:
                    role = "harness"
                elif "forkserver" in cmdline(pid) and "forkserver" in cmdline(parent) and parent != me:
                    role = "sandbox"
                else:
                    continue
                rec = PEAK.setdefault(pid, {"role": role, "RssAnon": 0.0, "RssFile": 0.0, "PrivateAnon": 0.0})
                rec["VmHWM"] = st.get("VmHWM", 0.0)
                rec["RssAnon"] = max(rec["RssAnon"], st.get("RssAnon", 0.0))
                rec["RssFile"] = max(rec["RssFile"], st.get("RssFile", 0.0))
                if tick % 5 == 0:
                    rec["PrivateAnon"] = max(rec["PrivateAnon"], private_anon(pid))
            time.sleep(0.2)

    def main():
        import torch  # noqa: F401 - imports first, so the baseline is the harness's fixed cost
        import xalbench
        from xalbench.data.real import ManifestDataset

        suite, out, data_root, isolation, csv, size = sys.argv[1:7]
        base = {**status(os.getpid()), "PrivateAnon": private_anon(os.getpid())}
        stop = threading.Event()
        thread = threading.Thread(target=monitor, args=(stop,), daemon=True)
        thread.start()
        t0 = time.perf_counter()
        results = xalbench.run(suite, out_dir=out, data_root=data_root, isolation=isolation, threads=1)
        wall = time.perf_counter() - t0
        stop.set()
        thread.join()
            b = ManifestDataset({"path": csv, "size": int(size), "in_memory_mb": 0}).load(data_root)
        r = results[0]
        print(json.dumps({"status": r["status"], "error": (r.get("error") or {}).get("message"), "wall_s": wall,
                          "timings": [x["timings"] for x in r["rounds"]], "base": base,
                          "peaks": list(PEAK.values()), "mapped": type(b.train.images).__name__,
                          "n_pool": len(b.train), "pool_float32_mb": b.train.images.nbytes / 2**20}))

    if __name__ == "__main__":
        main()
""")


@pytest.mark.parametrize("isolation", ["process", "inline"])
def test_bench_mapped_pool_cell(dataset: Path, prepared_root: tuple[Path, str], tmp_path: Path,
                                isolation: str) -> None:
    """One AL round (train, evaluate with Grad-CAM on the test ROIs, entropy over the whole pool) on the
    mapped pool: peak memory of the harness process and of the strategy's sandbox, as ratios to the
    float32 pool the copy route would have held (``inline``: the query runs in the harness process)."""
    data_root, _ = prepared_root
    suite = tmp_path / "suite.toml"
    suite.write_text(CELL_SUITE.format(strategy="entropy", csv=dataset / "manifest.csv", size=SIZE))
    script = tmp_path / "cell.py"
    script.write_text(_CELL)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), str(suite), str(tmp_path / "out"), str(data_root), isolation,
                           str(dataset / "manifest.csv"), str(SIZE)], capture_output=True, text=True, env=env,
                          timeout=3600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["status"] == "ok", r["error"]
    pool_mb = r["pool_float32_mb"]
    query = r["timings"][0]
    print(f"\n{isolation}: pool of {r['n_pool']} images ({r['mapped']}; {pool_mb:.0f} MiB as float32); cell "
          f"{r['wall_s']:.0f} s (round 0: train {query['train_s']:.0f} s, eval {query['eval_s']:.0f} s, query "
          f"{query['query_s']:.0f} s); harness RSS after imports {r['base']['VmHWM']:.0f} MiB "
          f"({r['base']['VmHWM'] / pool_mb:.3f}x the float32 pool)")
    for peak in r["peaks"]:
        print(f"  {peak['role']:8s} peak RSS {peak['VmHWM']:.0f} MiB = {peak['VmHWM'] / pool_mb:.3f}x the float32 pool; "
              f"anonymous (RssAnon) {peak['RssAnon']:.0f} MiB = {peak['RssAnon'] / pool_mb:.3f}x, of it private "
              f"{peak['PrivateAnon']:.0f} MiB = {peak['PrivateAnon'] / pool_mb:.3f}x; file-backed (RssFile: the "
              f"shared page cache of the map, libraries) {peak['RssFile']:.0f} MiB = {peak['RssFile'] / pool_mb:.3f}x")
    roles = [p["role"] for p in r["peaks"]]
    assert roles.count("harness") == 1 and roles.count("sandbox") == (1 if isolation == "process" else 0)
    # No process holds a copy of the pool: anonymous memory beyond the harness's own after its imports stays
    # under a quarter of the float32 pool (at least 1 GiB of slack for plugins, models and outputs).
    slack = max(0.25 * pool_mb, 1024.0)
    assert all(p["RssAnon"] - r["base"]["RssAnon"] < slack for p in r["peaks"]), (r["peaks"], r["base"])


# ------------------------------------------------------------------- paper-grade suites' compute
# Published image counts (dataset papers / challenge pages; MedMNIST from medmnist.INFO), split as the
# loaders do: official test sets kept, otherwise 70 / 10 / 20 % by patient. Tuple: (pool, val, test,
# test images with an ROI). "≈" counts are rounded from the published totals.
SIZES = {
    "vindr-cxr": (13_500, 1_500, 3_000, 950),          # 15 000 train + 3 000 test; ≈ 32 % of test abnormal
    "siim-covid19": (4_434, 633, 1_267, 860),          # 6 334 images; ≈ 68 % with opacity boxes
    "nih-cxr14": (77_872, 8_652, 25_596, 880),         # 86 524 train/val + 25 596 test; boxes on 880 test images
    "rsna-pneumonia": (18_679, 2_668, 5_337, 1_202),   # 26 684 patients; 22.5 % with opacity boxes
    "siim-acr-pneumothorax": (7_473, 1_068, 2_135, 470),  # ≈ 10 675 stage-1 train images; ≈ 22 % positive
    "chexpert": (133_719, 19_103, 38_205, 0),          # ≈ 191 000 frontal of 223 414 train images; no masks
    "ham10000": (7_010, 1_002, 2_003, 2_003),          # 10 015 images, all with lesion masks
    "brats": (2_066, 295, 590, 295),                   # 369 BraTS 2020 cases x (4 tumour + 4 tumour-free slices)
}
# GTX 1080 (cuDNN 5), 16 x 3 x 224 x 224, ms per batch: (forward + backward + update total, forward) —
# jcjohnson/cnn-benchmarks README. DenseNet-121 is not in that table: it uses ResNet-50's CPU/GPU ratio.
GPU_MS_PER_BATCH16 = {"resnet18": (47.07, 14.69), "resnet50": (153.90, 50.67)}
PAPER_SUITES = ("medical-paper", "medical-paper-other", "medical-paper-egal", "medical-paper-sal",
                "medical-paper-aeig")
PROTOCOLS = {"egal": (150, 7, 60), "sal": (0.05, 20, 0.05), "aeig": (0.10, 6, 0.06)}


def _sizes(label: str) -> tuple[int, int, int, int]:
    if label.startswith("medmnist:"):
        from medmnist.info import INFO

        n = INFO[label.split(":")[1].split("@")[0]]["n_samples"]
        return n["train"], n["val"], n["test"], 0
    return SIZES[label]


def _cpu_costs(model_name: str, channels: int, px: int = 224, batch: int = 8) -> dict[str, float]:
    """CPU seconds per image (process time, 1 thread) of the harness's per-image operations."""
    import torch

    from xalbench.base import Batch
    from xalbench.plugins import load_registry

    reg = load_registry()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = reg.create("model", model_name, {}).build(channels, 2, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, channels, px, px)
    y = torch.arange(batch) % 2
    roi = torch.zeros(batch, px, px)
    roi[:, px // 4: px // 2, px // 4: px // 2] = 1
    cam = reg.create("explainer", "gradcam", {})

    def train(loss_name: str) -> None:
        net.train()
        out = reg.create("loss", loss_name, {})(net, Batch(x, y, "multi-class", roi, torch.ones(batch, dtype=torch.bool)))
        opt.zero_grad()
        out.total.backward()
        opt.step()

    def forward() -> None:
        net.eval()
        with torch.no_grad():
            net(x)

    def gradcam() -> None:
        net.eval()
        cam.explain(net, x, y)

    out = {}
    for name, fn in (("train_ce", lambda: train("ce")), ("train_cam_loss", lambda: train("dice")),
                     ("train_rrr", lambda: train("rrr")), ("forward", forward), ("gradcam", gradcam)):
        fn()  # warm-up (oneDNN primitive creation)
        t0 = time.process_time()
        for _ in range(2):
            fn()
        out[name] = (time.process_time() - t0) / (2 * batch)
    return out


def _suite_cost(path: Path, cost: dict[str, float]) -> dict[str, tuple[int, float]]:
    """Per dataset: (cells, seconds of ``cost`` units) for one suite TOML, every dataset present."""
    import tomllib

    suite = tomllib.loads(path.read_text())
    losses = [m.get("loss", "ce") for m in suite.get("methods", [])]
    losses += [loss for _ in suite["strategies"] for loss in suite["losses"]]
    seeds, epochs = len(suite["seeds"]), suite["training"]["epochs"]
    init, rounds, query = PROTOCOLS[suite["protocol"]["base"]]
    out = {}
    for d in suite["datasets"]:
        pool, _val, test, test_roi = _sizes(d["label"])
        n0 = init if isinstance(init, int) else round(init * pool)
        q = query if isinstance(query, int) else round(query * pool)
        sizes = [min(pool, n0 + r * q) for r in range(rounds + 1)]
        sizes = [s for i, s in enumerate(sizes) if i == 0 or sizes[i - 1] < pool]
        eval_s = len(sizes) * (test * cost["forward"] + test_roi * cost["gradcam"])
        query_s = sum(pool - s for s in sizes[:-1]) * cost["forward"]
        total = 0.0
        for loss in losses:
            step = cost["train_ce" if loss == "ce" else "train_rrr" if loss == "rrr" else "train_cam_loss"]
            total += seeds * (epochs * sum(sizes) * step + sum(sizes) * cost["forward"] + eval_s + query_s)
        if suite.get("evaluation", {}).get("full_data_reference"):
            for loss in set(losses):
                step = cost["train_ce" if loss == "ce" else "train_rrr" if loss == "rrr" else "train_cam_loss"]
                total += seeds * (epochs * pool * step + test * cost["forward"])
        out[d["label"]] = (len(losses) * seeds, total)
    return out


def test_bench_paper_suite_compute() -> None:
    """Per-image CPU costs of each paper backbone at 224 px, scaled to every paper-grade suite."""
    backbones = {"densenet121": 1, "resnet18": 3, "resnet50": 3}
    costs = {m: _cpu_costs(m, ch) for m, ch in backbones.items()}
    ratio = {m: costs[m]["train_ce"] / (GPU_MS_PER_BATCH16[m][0] / 16 / 1000) for m in GPU_MS_PER_BATCH16}
    ratio["densenet121"] = ratio["resnet50"]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; CPU seconds per image at 224 px, "
          "1 thread (process time):")
    for m, c in costs.items():
        print(f"  {m:12s} " + ", ".join(f"{k} {v:.3f}" for k, v in c.items()) +
              f"; CPU/GTX-1080 train-step ratio {ratio[m]:.0f}x")
    print(f"  ResNet-18 vs ResNet-50 ratio: {ratio['resnet18'] / ratio['resnet50']:.2f} (1.00 = same CPU/GPU ratio "
          "for every backbone, the scaling assumption)")
    suite_dir = Path(__file__).resolve().parents[1] / "xalbench" / "suites"
    for name in PAPER_SUITES:
        import tomllib

        path = suite_dir / f"{name}.toml"
        model = tomllib.loads(path.read_text())["model"]["name"]
        per = _suite_cost(path, costs[model])
        cells = sum(c for c, _ in per.values())
        cpu_h = sum(s for _, s in per.values()) / 3600
        print(f"{name} ({model}): {cells} cells with every dataset present; {cpu_h:,.0f} CPU-core hours; "
              f"≈ {cpu_h / ratio[model]:,.0f} GTX-1080 GPU hours")
        for label, (c, s) in per.items():
            print(f"    {label:32s} {c:4d} cells  {s / 3600 / ratio[model]:10,.1f} GPU h")
    assert all(v > 0 for c in costs.values() for v in c.values())
