"""Compile the decode kernels with and without their fusions for sm_90 on a machine with no GPU
and print each one's registers, spills (STACK) and shared memory, from the cubin Triton builds
(gpt-oss-20b shapes; pointer arguments 16-byte aligned, as at run time): decode attention's split
kernel with the combine in its last program or not, the packed down GEMV writing the next norm
or not, each with programmatic dependent launch (PDL: its wait, and the down GEMV's prefetches)
and without; and the packed grouped GEMMs of prompts (weights first: the MMA's first operand) at
each tile of kernels.MXFP4_PREFILL_EXPERTS_TILES and of benchmarks/gpu_prefill_experts.py's sweep,
with how their PTX's wgmma takes that operand.

    PYTHONPATH=. python benchmarks/sm90_registers.py

`compiled` takes any @triton.jit kernel with its argument types and constants: the way to check
a new kernel's registers for the H200 before a device call.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from gpu_prefill_experts import TILES
from osslsp.engine import kernels

TARGET = GPUTarget("cuda", 90, 32)
H, I, K = 2880, 2880, 4  # hidden, intermediate, top-k
NQ, NKV, D = 64, 8, 64  # query heads, kv heads, head size
SPLIT = dict(Q="*fp16", KCache="*fp16", VCache="*fp16", Positions="*i64", Slots="*i64", PartAcc="*fp32",
             PartMax="*fp32", PartSum="*fp32", Sinks="*fp16", Out="*fp16", Counters="*i32", cache_len="i32",
             window="i32", scale="fp32")
DOWN = dict(ActPairs="*i32", Words="*i32", Scales="*u8", scale_row="i32", Bias="*fp16", ExpertIds="*i64",
            ExpertWeights="*fp16", Out="*fp16", Residual="*fp16", NormWeight="*fp16", Normed="*fp16",
            Counter="*i32", eps="fp32")

GATE_UP_T = dict(X="*fp16", Blocks="*u8", Scales="*u8", Bias="*fp16", SortedPairs="*i32", BlockExpert="*i32",
                 Act="*fp16", n_pairs="i32", first_expert="i32", limit="fp32", alpha="fp32")
DOWN_T = dict(Act="*fp16", Blocks="*u8", Scales="*u8", Bias="*fp16", SortedPairs="*i32", BlockExpert="*i32",
              PairWeights="*fp16", PairOut="*fp16", n_pairs="i32", first_expert="i32")


def resource_usage(cubin: bytes) -> str:
    """cuobjdump's REG/STACK/SHARED line of a cubin."""
    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile("wb", suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        report = subprocess.run([tool, "--dump-resource-usage", file.name], capture_output=True, text=True).stdout
    return " ".join(line.split("Resource usage:")[-1].strip() for line in report.splitlines() if "REG" in line)


def compiled(fn, signature: dict[str, str], constants: dict, warps: int, stages: int = 3):
    """fn compiled for TARGET: signature gives each run-time argument's Triton type, constants the
    constexpr ones."""
    names = fn.arg_names
    source = ASTSource(fn, signature={**signature, **{name: "constexpr" for name in constants}},
                       constexprs={(names.index(name),): value for name, value in constants.items()},
                       attrs={(names.index(name),): [["tt.divisibility", 16]]
                              for name, kind in signature.items() if kind.startswith("*")})
    return triton.compile(source, target=TARGET, options={"num_warps": warps, "num_stages": stages})


def main() -> None:
    group = NQ // NKV
    one_row = inspect.signature(kernels.DecodeAttention).parameters
    for combine, pdl in ((False, False), (True, False), (True, True)):
        constants = dict(NKV=NKV, GROUP=group, GROUP_PAD=max(16, group), D=D, N_SPLIT=one_row["n_split"].default,
                         BLOCK_N=one_row["block_n"].default, COMBINE=combine, GROUP_P2=group, PDL=pdl)
        kernel = compiled(kernels._decode_attention_split_kernel, SPLIT, constants, warps=4)
        print(f"_decode_attention_split_kernel COMBINE={combine} PDL={pdl}: {resource_usage(kernel.asm['cubin'])}",
              flush=True)
    rows, groups, warps = inspect.signature(kernels.DecodeExpertsMxfp4).parameters["down_block"].default
    for norm, pdl in ((False, False), (True, False), (True, True)):
        constants = dict(H=H, I=I, TOP_K=K, BLOCK_M=rows, BLOCK_G=groups, NORM=norm,
                         BLOCK_H=triton.next_power_of_2(H), ROW_LINES=triton.next_power_of_2(triton.cdiv(I // 2, 128)),
                         PDL=pdl)
        kernel = compiled(kernels._down_gemv_kernel, DOWN, constants, warps)
        print(f"_down_gemv_kernel NORM={norm} PDL={pdl}: {resource_usage(kernel.asm['cubin'])}", flush=True)
        if pdl:
            ptx = kernel.asm["ptx"]
            print(f"  its PTX: {ptx.count('griddepcontrol.wait')} wait, {ptx.count('griddepcontrol.launch_dependents')}"
                  f" launch_dependents, {ptx.count('prefetch.global.L2')} prefetches", flush=True)

    table = [tiles for _, tiles in kernels.MXFP4_PREFILL_EXPERTS_TILES]
    for block_m, block_n, block_k, warps, stages in dict.fromkeys(table + list(TILES)):  # the table's first
        constants = dict(H=H, I=I, E=32, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k, PDL=True)
        for fn, signature, extra in ((kernels._mxfp4_gate_up_gemm_t_kernel, GATE_UP_T, dict(TOP_K=K)),
                                     (kernels._mxfp4_down_gemm_t_kernel, DOWN_T, {})):
            kernel = compiled(fn, signature, {**constants, **extra}, warps, stages)
            mma = next(line for line in kernel.asm["ptx"].splitlines() if "wgmma.mma_async" in line)
            first = "registers" if mma.split("}, ")[1].startswith("{") else "shared memory"
            print(f"{fn.__name__} {(block_m, block_n, block_k, warps, stages)}: {resource_usage(kernel.asm['cubin'])}, "
                  f"{kernel.metadata.shared} B dynamic shared, first operand from {first}", flush=True)


if __name__ == "__main__":
    main()
