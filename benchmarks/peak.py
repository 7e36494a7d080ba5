"""This machine's limit: the best matrix-multiply GFLOP/s PyTorch reaches on it, in float32 and in
bfloat16. Where the hardware has native bf16 (AMX or AVX512-BF16 on a CPU, tensor cores on a GPU)
the bf16 figure is the real limit, and speed claims elsewhere are put beside it (achieved / peak).

    python benchmarks/peak.py [--device cpu|cuda] [--size 2048]
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
    from cnnlab.train.precision import native_bf16

    result = {"device": args.device, "threads": torch.get_num_threads(), "size": args.size,
              "float32_gflops": round(matmul_gflops(args.device, args.size), 1),
              "bfloat16_gflops": round(matmul_gflops(args.device, args.size, dtype=torch.bfloat16), 1),
              "native_bf16": native_bf16(torch.device(args.device))}
    if args.device == "cuda":
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
