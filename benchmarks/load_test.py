"""Load test of the app's ``inspect`` endpoint: concurrent gradio_client clients on real X-rays.

Starts ``python app.py`` on a free 127.0.0.1 port, sends CLIENTS x REQUESTS requests from
concurrent clients, and reports failures, p50/p95 latency and the server's resident memory
(RSS) before and after. It stops by itself after --time-limit seconds, counting requests that
did not run as failures, and always stops the server.

Example:
    AEFLOW_MODEL=weights/chest-xray python benchmarks/load_test.py --output load.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

# Run as a script, so benchmarks/ is on sys.path and speed.py imports as a module.
from speed import machine_description

ROOT = Path(__file__).resolve().parent.parent
XRAY_DIR = ROOT / "tests" / "data" / "xray"
STARTUP_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    """Return the resident memory of a process in MiB (psutil if installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        msg = f"no VmRSS line in /proc/{pid}/status"
        raise RuntimeError(msg) from None
    return psutil.Process(pid).memory_info().rss / (1024 * 1024)


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of ``values``, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"app.py exited with code {process.returncode} during startup; see {log_path}"
            raise RuntimeError(msg)
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    msg = f"app.py did not answer at {url} within {STARTUP_TIMEOUT_S} s; see {log_path}"
    raise RuntimeError(msg)


def run_clients(url: str, images: list[Path], clients: int, requests: int, deadline: float) -> dict:
    """Send ``requests`` inspect calls from each of ``clients`` threads until ``deadline``."""
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    errors: list[str] = []
    skipped = [0]
    lock = threading.Lock()

    def client_loop(index: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as error:  # any connection failure counts against the run
            with lock:
                errors.append(f"client {index}: connect failed: {error!r}")
                skipped[0] += requests
            return
        try:
            for number in range(requests):
                if time.monotonic() > deadline:
                    with lock:
                        skipped[0] += requests - number
                    return
                image = images[(index * requests + number) % len(images)]
                started = time.perf_counter()
                try:
                    outputs = client.predict(handle_file(str(image)), api_name="/inspect")
                    if outputs[6] not in ("normal", "anomalous", "no threshold (uncalibrated model)"):
                        raise ValueError(f"unexpected verdict {outputs[6]!r}")
                except Exception as error:  # every failure is recorded, none stops the run
                    with lock:
                        errors.append(f"client {index} request {number} ({image.name}): {error!r}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(index,), daemon=True) for index in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 60)
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "not_run": skipped[0], "wall_s": wall}


def markdown_table(result: dict) -> str:
    def number(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    rows = [
        ("model", result["model"]),
        ("requests (clients x per client)", f"{result['requests']} ({result['clients']} x {result['per_client']})"),
        ("succeeded", str(result["succeeded"])),
        ("failed (errors + not run)", f"{result['failed']} ({len(result['errors'])} + {result['not_run']})"),
        ("latency p50 (s)", number(result["latency_p50_s"])),
        ("latency p95 (s)", number(result["latency_p95_s"])),
        ("throughput (requests/s)", number(result["throughput_per_s"])),
        ("server RSS before (MiB)", number(result["rss_before_mib"], 1)),
        ("server RSS after (MiB)", number(result["rss_after_mib"], 1)),
        ("RSS growth (MiB)", number(result["rss_growth_mib"], 1)),
        ("wall time (s)", number(result["wall_s"], 1)),
    ]
    lines = ["| metric | value |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="Concurrent clients (default: %(default)s).")
    parser.add_argument("--requests", type=int, default=25, help="Requests per client (default: %(default)s).")
    parser.add_argument("--time-limit", type=float, default=1200, help="Seconds after which the test stops (default: %(default)s).")
    parser.add_argument("--output", type=Path, required=True, help="Write the results as JSON to this file.")
    parser.add_argument("--server-log", type=Path, default=Path("load_test_server.log"), help="File for the server's output (default: %(default)s).")
    args = parser.parse_args()

    images = sorted(XRAY_DIR.glob("*.jpeg"))
    if not images:
        print(f"load_test: error: no X-rays in {XRAY_DIR}", file=sys.stderr)
        return 2

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    process = start_server(port, args.server_log)
    try:
        wait_until_up(url, process, args.server_log)
        deadline = time.monotonic() + args.time_limit
        # One warm-up request loads the model, so the RSS baseline includes it.
        warm_up = run_clients(url, images[:1], 1, 1, deadline)
        if warm_up["errors"]:
            print(f"load_test: error: warm-up request failed: {warm_up['errors'][0]}", file=sys.stderr)
            return 2
        rss_before = rss_mib(process.pid)
        run = run_clients(url, images, args.clients, args.requests, deadline)
        rss_after = rss_mib(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    total = args.clients * args.requests
    latencies = run["latencies"]
    result = {
        "model": os.environ.get("AEFLOW_MODEL") or "weights/chest-xray",
        "clients": args.clients,
        "per_client": args.requests,
        "requests": total,
        "succeeded": len(latencies),
        "failed": total - len(latencies),
        "errors": run["errors"][:20],
        "not_run": run["not_run"],
        "latency_p50_s": percentile(latencies, 0.50),
        "latency_p95_s": percentile(latencies, 0.95),
        "throughput_per_s": len(latencies) / run["wall_s"] if run["wall_s"] else None,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "rss_growth_mib": rss_after - rss_before,
        "wall_s": run["wall_s"],
        "machine": machine_description(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown_table(result))
    for error in result["errors"]:
        print(f"error: {error}", file=sys.stderr)
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
