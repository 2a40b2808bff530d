"""Compile the wide-block MXFP4 GEMMs (kernels._mxfp4_*_wide_kernel) for sm_90 on a machine with
no GPU and print each tile's registers, spills (STACK) and shared memory, from the cubin Triton
builds (gpt-oss-20b shapes; pointer arguments 16-byte aligned, as at run time).

    PYTHONPATH=. python benchmarks/sm90_registers.py 4,64,64,64,8,3 2,128,64,64,8,3 [--skip-empty]

Tiles: SUB,BLOCK_M,BLOCK_N,BLOCK_K,num_warps,num_stages (kernels.MXFP4_WIDE_TILES).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from osslsp.engine import kernels

TARGET = GPUTarget("cuda", 90, 32)
H, I, E, K = 2880, 2880, 32, 4
PAIRS = dict(SortedPairs="*i32", BlockExpert="*i32", n_pairs="i32")
GATE_UP = dict(X="*fp16", Blocks="*u8", Scales="*u8", Bias="*fp16", Act="*fp16", limit="fp32", alpha="fp32", **PAIRS)
DOWN = dict(Act="*fp16", Blocks="*u8", Scales="*u8", Bias="*fp16", PairWeights="*fp16", PairOut="*fp16", **PAIRS)


def resource_usage(cubin: bytes) -> str:
    """cuobjdump's REG/STACK/SHARED line of a cubin."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        report = subprocess.run([tool, "--dump-resource-usage", file.name], capture_output=True, text=True).stdout
    return " ".join(line.split("Resource usage:")[-1].strip() for line in report.splitlines() if "REG" in line)


def compiled(fn, signature: dict[str, str], constants: dict, warps: int, stages: int):
    names = fn.arg_names
    source = ASTSource(fn, signature={**signature, **{name: "constexpr" for name in constants}},
                       constexprs={(names.index(name),): value for name, value in constants.items()},
                       attrs={(names.index(name),): [["tt.divisibility", 16]]
                              for name, kind in signature.items() if kind.startswith("*")})
    return triton.compile(source, target=TARGET, options={"num_warps": warps, "num_stages": stages})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tiles", nargs="+")
    parser.add_argument("--skip-empty", action="store_true")
    args = parser.parse_args()
    for text in args.tiles:
        sub, block_m, block_n, block_k, warps, stages = (int(v) for v in text.split(","))
        tiles = dict(H=H, I=I, E=E, SUB=sub, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
                     SKIP_EMPTY=args.skip_empty)
        for fn, signature, extra in ((kernels._mxfp4_gate_up_wide_kernel, GATE_UP, dict(TOP_K=K)),
                                     (kernels._mxfp4_down_wide_kernel, DOWN, {})):
            kernel = compiled(fn, signature, {**tiles, **extra}, warps, stages)
            print(f"{text} {fn.__name__}: {resource_usage(kernel.asm['cubin'])}", flush=True)


if __name__ == "__main__":
    main()
