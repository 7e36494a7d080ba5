"""This machine's limit: the best float32 matrix-multiply GFLOP/s PyTorch reaches on it.

    python benchmarks/peak.py [--device cpu|cuda] [--size 2048]

Speed claims elsewhere are put beside this number (achieved / peak).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def matmul_gflops(device: str = "cpu", size: int = 2048, repeats: int = 10, dtype=torch.float32) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    result = {"device": args.device, "threads": torch.get_num_threads(), "size": args.size,
              "float32_gflops": round(matmul_gflops(args.device, args.size), 1)}
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
        result["bfloat16_gflops"] = round(matmul_gflops(args.device, args.size * 2, dtype=torch.bfloat16), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
