"""The peer users would pick instead: llama.cpp on the same random MXFP4 weights as `osslsp bench`.

The released-layout checkpoint `--model random-mxfp4:CONFIG_DIR` builds (or finds in the cache) is
converted to GGUF by llama.cpp's own converter (`convert_hf_to_gguf.py`: its MXFP4 experts stay
MXFP4, the rest in FP16 as ours), next to gpt-oss's tokenizer (built offline from o200k_base), and
timed by llama-bench: a cold 2,048-token prompt, and decode at a 2,048-token context, batch 1,
every layer on the GPU, flash attention on.

    PYTHONPATH=. python benchmarks/llama_cpp_peer.py --llama-cpp SRC --llama-bench BUILD/bin/llama-bench \\
        [--model random-mxfp4:osslsp/data/gpt-oss-20b] [--work DIR] [--json OUT]

SRC is llama.cpp's source (convert_hf_to_gguf.py and gguf-py/ in it); llama-bench is its CUDA
build (`cmake -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 && cmake --build build --target
llama-bench`). The GGUF is written once into --work and reused; without --llama-bench the script only writes it
(while llama.cpp builds, say).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from osslsp.models import ensure_built, resolve_model
from osslsp.paths import cache_dir


def checkpoint_with_tokenizer(weights: Path, text: Path, folder: Path) -> Path:
    """A folder that holds the checkpoint's files and the tokenizer's, as a download does (links)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in [*weights.iterdir(), *text.iterdir()]:
        link = folder / source.name
        if source.is_file() and not link.exists():
            link.symlink_to(source.resolve())
    return folder


def convert(llama_cpp: Path, checkpoint: Path, gguf: Path) -> float:
    """Write `gguf` with llama.cpp's converter unless it exists; seconds taken (0 when it existed)."""
    if gguf.exists():
        return 0.0
    started = time.perf_counter()
    partial = gguf.with_suffix(".partial")
    paths = [str(llama_cpp / "gguf-py"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    subprocess.run([sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(checkpoint),
                    "--outfile", str(partial), "--outtype", "f16"], env=env, check=True)
    partial.rename(gguf)
    return time.perf_counter() - started


def llama_bench(binary: Path, gguf: Path, prompt: int, depth: int, generate: int, repeats: int) -> list[dict]:
    """llama-bench's JSON rows for one run: a prompt of `prompt` tokens from an empty context, or
    `generate` tokens decoded one at a time after `depth` tokens of context."""
    command = [str(binary), "-m", str(gguf), "-p", str(prompt), "-n", str(generate), "-d", str(depth),
               "-ngl", "99", "-fa", "1", "-r", str(repeats), "-o", "json"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-mxfp4:osslsp/data/gpt-oss-20b")
    parser.add_argument("--llama-cpp", type=Path, required=True, help="llama.cpp's source folder")
    parser.add_argument("--llama-bench", type=Path, help="its llama-bench binary (without it: only convert)")
    parser.add_argument("--work", type=Path, default=cache_dir() / "llama-cpp-peer")
    parser.add_argument("--tokens", type=int, default=2048, help="the prompt, and the context decode runs at")
    parser.add_argument("--generate", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    source = resolve_model(args.model)
    if source.kind != "random-mxfp4":
        parser.error("--model takes random-mxfp4:CONFIG_DIR (the weights osslsp bench measures)")
    ensure_built(source)
    checkpoint = checkpoint_with_tokenizer(source.weights, source.text_dir, args.work / "checkpoint")
    gguf = args.work / "model-mxfp4.gguf"
    seconds = convert(args.llama_cpp, checkpoint, gguf)
    print(f"GGUF {gguf} ({gguf.stat().st_size / 2**30:.1f} GiB), converted in {seconds:.0f} s", flush=True)
    if args.llama_bench is None:
        return

    prompt = llama_bench(args.llama_bench, gguf, args.tokens, 0, 0, args.repeats)[0]
    decode = llama_bench(args.llama_bench, gguf, 0, args.tokens, args.generate, args.repeats)[0]
    figures = {
        "prompt_tokens_per_s": prompt["avg_ts"],
        "cold_ttft_ms": 1000 * args.tokens / prompt["avg_ts"],
        "decode_tok_s": decode["avg_ts"],
        "backends": prompt.get("backends", ""),
        "gpu": prompt.get("gpu_info", ""),
        "model_type": prompt.get("model_type", ""),
        "model_size_gib": prompt.get("model_size", 0) / 2**30,
    }
    print(f"llama.cpp ({figures['backends']}: {figures['gpu']}), {args.model} as GGUF "
          f"({figures['model_type']}, {figures['model_size_gib']:.1f} GiB):\n"
          f"  prompt of {args.tokens} tokens: {figures['prompt_tokens_per_s']:.0f} tokens/s "
          f"(cold TTFT {figures['cold_ttft_ms']:.1f} ms)\n"
          f"  decode at a {args.tokens}-token context: {figures['decode_tok_s']:.1f} tok/s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "prompt": prompt, "decode": decode}, indent=2))


if __name__ == "__main__":
    main()
