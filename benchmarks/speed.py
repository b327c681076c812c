"""Measure AE-FLOW inference speed: whole-path latency, throughput, memory, FLOPs and the app.

Run from the repository root::

    python benchmarks/speed.py --output benchmarks/speed.json

Two models are measured side by side at 256 x 256. The first is the shipped model
(``weights/chest-xray``), or the default ``AEFlowConfig()`` with random weights when that folder
is missing. The second is the AE-FLOW paper's configuration (``wide_resnet50_2`` encoder, 1024
channels) with random weights, because speed does not depend on the weight values. Each model runs in its own worker process, so that its peak RSS
(``resource.getrusage`` high-water mark) is its own. The script prints a markdown table and
writes every number as JSON.

Timings are wall-clock (``time.perf_counter``). The CPU time per call (``time.process_time``,
summed over threads) is recorded too, because on a busy machine it varies far less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XRAY_DIR = ROOT / "tests" / "data" / "xray"
SHIPPED_MODEL = ROOT / "weights" / "chest-xray"
IMAGE_SIZE = 256
THROUGHPUT_BATCH = 16
WARMUP_CALLS = 3
MATMUL_SIDE = 2048

# Targets for the shipped model, checked in the summary lines.
TARGET_RATIO_TO_PAPER = 1 / 3
TARGET_MEDIAN_MS = 60.0
TARGET_THRESHOLD_MS = 100.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _time_calls(function, repeats: int, warmup: int = WARMUP_CALLS) -> dict[str, float]:
    """Call ``function`` ``warmup`` times untimed, then time ``repeats`` calls in milliseconds."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeats):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return {
        "median_ms": statistics.median(wall),
        "p95_ms": _percentile(wall, 0.95),
        "min_ms": min(wall),
        "cpu_median_ms": statistics.median(cpu),
        "repeats": repeats,
    }


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device_name: str, repeats: int = 5) -> dict[str, float]:
    """Measure the GFLOP/s of a float32 ``MATMUL_SIDE`` square matmul with torch's current thread count."""
    import torch

    device = torch.device(device_name)
    a = torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=device)
    b = torch.randn(MATMUL_SIDE, MATMUL_SIDE, device=device)

    def multiply() -> None:
        torch.matmul(a, b)
        _synchronize(device)

    timing = _time_calls(multiply, repeats, warmup=2)
    flops = 2 * MATMUL_SIDE**3
    return {"gflops_per_s": flops / (timing["min_ms"] / 1000) / 1e9, "median_ms": timing["median_ms"]}


def _build_model(kind: str, device_name: str):
    """Return (model, description) for "shipped" or "paper"."""
    import torch

    from aeflow import AEFlow, AEFlowConfig, load_model

    torch.manual_seed(0)
    if kind == "shipped":
        if SHIPPED_MODEL.is_dir():
            return load_model(SHIPPED_MODEL, device=device_name), f"shipped model ({SHIPPED_MODEL.relative_to(ROOT)})"
        return AEFlow(AEFlowConfig()), "AEFlowConfig() with RANDOM weights (weights/chest-xray not found)"
    model = AEFlow(AEFlowConfig(backbone="wide_resnet50_2"))
    return model, "paper configuration: wide_resnet50_2, 1024 channels, random weights"


def count_flops(model, image) -> int:
    """Count the FLOPs of one ``model.predict`` call (forward plus scoring) with torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # FlopCounterMode's module tracker fails under inference_mode on parameters, so use no_grad.
    with torch.no_grad(), counter:
        model.predict(image)
    return counter.get_total_flops()


def run_model_worker(kind: str, device_name: str, repeats: int) -> dict:
    """Measure one model in this process, which is a fresh worker process."""
    import torch

    from aeflow import Inspector
    from aeflow.io import read_image, to_model_input

    rss_before_model = _peak_rss_mib()
    model, description = _build_model(kind, device_name)
    device = torch.device(device_name)
    inspector = Inspector(model, device)
    config = inspector.config
    paths = sorted(XRAY_DIR.glob("*.jpeg"))
    path = paths[0]

    def whole_path() -> None:
        inspector.predict_file(path)
        _synchronize(device)

    # "Unfused" runs the same Inspector path with the plain model, so it shows what BatchNorm folding
    # and channels_last save. The separable SSIM cannot be switched off here.
    optimised_model = inspector.inference_model
    inspector.inference_model = inspector.model
    unfused = _time_calls(whole_path, repeats)
    inspector.inference_model = optimised_model
    latency = _time_calls(whole_path, repeats)

    image = to_model_input(read_image(path), config.image_size, config.mean, config.std)
    image = image.to(device, memory_format=torch.channels_last)

    def forward_and_score() -> None:
        with torch.inference_mode():
            inspector.inference_model.predict(image)
        _synchronize(device)

    model_only = _time_calls(forward_and_score, repeats)
    flops = count_flops(inspector.inference_model, image)

    batch_images = [read_image(paths[index % len(paths)]) for index in range(THROUGHPUT_BATCH)]

    def batch() -> None:
        inspector.predict_arrays(batch_images)
        _synchronize(device)

    throughput_repeats = max(2, repeats // 5)
    batch_timing = _time_calls(batch, throughput_repeats, warmup=1)
    result = {
        "model": kind,
        "description": description,
        "device": device_name,
        "backbone": config.backbone,
        "channels": int(inspector.model.encoder.channels),
        "image_size": config.image_size,
        "latency_batch1": latency,
        "latency_batch1_unfused": unfused,
        "model_and_score_batch1": model_only,
        "throughput_batch16": {
            "images_per_s": THROUGHPUT_BATCH / (batch_timing["median_ms"] / 1000),
            "batch_median_ms": batch_timing["median_ms"],
            "repeats": throughput_repeats,
        },
        "gflops_per_image": flops / 1e9,
        "achieved_gflops_per_s": flops / 1e9 / (model_only["median_ms"] / 1000),
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_model_mib": rss_before_model,
    }
    if device.type == "cuda":
        result["peak_cuda_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    result["matmul"] = measure_matmul_peak(device_name)
    result["fraction_of_matmul_peak"] = result["achieved_gflops_per_s"] / result["matmul"]["gflops_per_s"]
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _app_model_folder(folder: Path) -> Path:
    """Return the shipped model, or save a random-weights model with a made-up calibration."""
    if SHIPPED_MODEL.is_dir():
        return SHIPPED_MODEL
    import torch

    from aeflow import AEFlow, AEFlowConfig
    from aeflow.calibration import Calibration

    torch.manual_seed(0)
    model = AEFlow(AEFlowConfig())
    # Made-up values in the range of real scores, so that the slider handler draws its plot as
    # it does for a calibrated model. Only the handler's run time matters here.
    model.calibration = Calibration(
        threshold=0.0, score_scale=0.01, target_specificity=0.95, residual_map_max=0.5,
        flow_map_min=0.9, flow_map_max=3.0, flow_nll_low=0.5, flow_nll_high=5.0,
        normal_scores=[-0.02 + 0.0001 * index for index in range(200)],
        anomaly_scores=[0.0 + 0.0001 * index for index in range(200)], source="benchmark placeholder",
    )
    model.save_pretrained(folder)
    return folder


def run_app_worker(repeats: int) -> dict:
    """Time the app's inspect endpoint through gradio_client and the threshold slider's handler."""
    with tempfile.TemporaryDirectory() as folder:
        os.environ["AEFLOW_MODEL"] = str(_app_model_folder(Path(folder) / "model"))
        sys.path.insert(0, str(ROOT))
        import app
        from gradio_client import Client, handle_file

        port = _free_port()
        app.demo.launch(**app.LAUNCH_OPTIONS, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                        quiet=True)
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            path = str(sorted(XRAY_DIR.glob("*.jpeg"))[0])
            inspect = _time_calls(lambda: client.predict(handle_file(path), api_name="/inspect"), max(5, repeats // 2))
        finally:
            app.demo.close()

        # The slider's change handler is private (api_visibility="private"), so no API client can
        # call it. Time the same function that the server runs on a slider change, in process.
        prediction = app.predict_images([app.read_upload(path)])[0]
        calibration = app.get_inspector().calibration
        low = calibration.threshold - 0.01 if calibration else 0.0
        thresholds = iter([low + 0.001 * (index % 20) for index in range(10_000)])
        threshold = _time_calls(lambda: app.update_decision(prediction, next(thresholds)), repeats)
    return {
        "inspect_via_gradio_client": inspect,
        "threshold_change_handler": threshold,
        "threshold_method": "app.update_decision called in process (the slider handler is not exposed through the API)",
        "model": "shipped" if SHIPPED_MODEL.is_dir() else "random weights with a placeholder calibration",
    }


def _run_worker(arguments: list[str]) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if completed.returncode != 0:
        msg = f"Worker {' '.join(arguments)} failed with exit code {completed.returncode}:\n{completed.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def machine_description() -> dict:
    import torch

    cpu_model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model,
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_1min_at_start": load[0] if load else None,
    }


def format_table(results: list[dict]) -> str:
    header = (
        "| model | device | whole path b=1 median / p95 (ms) | CPU ms per call | unfused median (ms) "
        "| batch 16 (img/s) | GFLOP per image | achieved GFLOP/s | fraction of matmul peak | peak RSS (MiB) |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    rows = []
    for item in results:
        latency = item["latency_batch1"]
        rows.append(
            f"| {item['model']}: {item['backbone']}, {item['channels']} ch | {item['device']} "
            f"| {latency['median_ms']:.1f} / {latency['p95_ms']:.1f} | {latency['cpu_median_ms']:.1f} "
            f"| {item['latency_batch1_unfused']['median_ms']:.1f} | {item['throughput_batch16']['images_per_s']:.1f} "
            f"| {item['gflops_per_image']:.2f} | {item['achieved_gflops_per_s']:.1f} "
            f"| {item['fraction_of_matmul_peak']:.3f} | {item['peak_rss_mib']:.0f} |"
        )
    return "\n".join([header, *rows])


def summarize(results: list[dict], app_result: dict | None) -> list[str]:
    lines = []
    by_key = {(item["model"], item["device"]): item for item in results}
    for device in sorted({item["device"] for item in results}):
        shipped, paper = by_key.get(("shipped", device)), by_key.get(("paper", device))
        if shipped and paper:
            ratio = shipped["latency_batch1"]["median_ms"] / paper["latency_batch1"]["median_ms"]
            cpu_ratio = shipped["latency_batch1"]["cpu_median_ms"] / paper["latency_batch1"]["cpu_median_ms"]
            lines.append(
                f"- {device}: shipped / paper whole-path median = {ratio:.3f} (CPU time ratio {cpu_ratio:.3f}; "
                f"target at most {TARGET_RATIO_TO_PAPER:.3f})"
            )
        if shipped:
            median = shipped["latency_batch1"]["median_ms"]
            lines.append(f"- {device}: shipped whole-path median {median:.1f} ms (target at most {TARGET_MEDIAN_MS:.0f} ms on the CPU)")
            speedup = shipped["latency_batch1_unfused"]["median_ms"] / median
            lines.append(f"- {device}: BatchNorm folding + channels_last speed-up on the whole path: {speedup:.2f}x")
        if shipped:
            lines.append(f"- {device}: matmul peak {shipped['matmul']['gflops_per_s']:.1f} GFLOP/s ({MATMUL_SIDE}^2 float32)")
    if app_result:
        inspect = app_result["inspect_via_gradio_client"]
        threshold = app_result["threshold_change_handler"]
        lines.append(f"- app inspect via gradio_client: median {inspect['median_ms']:.1f} ms, p95 {inspect['p95_ms']:.1f} ms")
        lines.append(
            f"- threshold change to verdict (server time, {app_result['threshold_method']}): median "
            f"{threshold['median_ms']:.1f} ms, p95 {threshold['p95_ms']:.1f} ms (target under {TARGET_THRESHOLD_MS:.0f} ms)"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="Timed calls per batch-1 measurement after warm-up (default: %(default)s).")
    parser.add_argument("--skip-app", action="store_true", help="Skip the Gradio app measurements.")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="Device to measure; auto measures the CPU, and CUDA too when available (default: %(default)s).")
    parser.add_argument("--output", type=Path, default=None, help="Write all results to this JSON file.")
    parser.add_argument("--worker", choices=["shipped", "paper", "app"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "app":
        print(json.dumps(run_app_worker(args.repeats)))
        return 0
    if args.worker is not None:
        print(json.dumps(run_model_worker(args.worker, args.worker_device, args.repeats)))
        return 0

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("speed.py: error: --device cuda was given, but torch finds no CUDA device.", file=sys.stderr)
        return 2
    devices = {"auto": ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"], "cpu": ["cpu"], "cuda": ["cuda"]}[args.device]

    started = time.perf_counter()
    machine = machine_description()
    results = []
    for device in devices:
        for kind in ("shipped", "paper"):
            # The paper configuration needs many times the FLOPs, so it gets fewer repeats on a CPU.
            repeats = args.repeats if kind == "shipped" or device == "cuda" else max(5, args.repeats // 3)
            print(f"Measuring {kind} on {device} ({repeats} repeats)...", file=sys.stderr)
            results.append(_run_worker(["--worker", kind, "--worker-device", device, "--repeats", str(repeats)]))
    app_result = None
    if not args.skip_app:
        print("Measuring the app...", file=sys.stderr)
        app_result = _run_worker(["--worker", "app", "--repeats", str(args.repeats)])

    print(f"Machine: {machine['cpu_model']}, {machine['logical_cores']} logical cores, torch {machine['torch']} "
          f"with {machine['torch_threads']} threads, load average {machine['load_average_1min_at_start']}")
    for item in results:
        print(f"- {item['model']}: {item['description']}")
    print()
    print(format_table(results))
    print()
    summary = summarize(results, app_result)
    print("\n".join(summary))
    total = time.perf_counter() - started
    print(f"\nTotal run time {total:.0f} s")

    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {"machine": machine, "models": results, "app": app_result, "summary": summary, "run_time_s": total,
                  "command": " ".join(["python", "benchmarks/speed.py", *(argv if argv is not None else sys.argv[1:])])}
        args.output.write_text(json.dumps(record, indent=2) + "\n")
        print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
