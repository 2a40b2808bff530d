"""Where reserved memory sits after the fast runner's set-up (MXFP4 experts packed in memory), by pool."""
import collections, sys, time
import torch
sys.path.insert(0, "benchmarks")
from gpu_profile import pack_experts
from osslsp.engine import gpt_oss_fast
from osslsp.engine.loading import load_model
from osslsp.models import resolve_model

variant = sys.argv[1]
if variant == "no-expandable":
    gpt_oss_fast._use_expandable_segments = lambda: None
if variant == "few-buckets":
    gpt_oss_fast.prefill_graph_buckets = lambda max_context, chunk: [b for b in (16, 64, 512, 1024, 2048, 4096) if b < max_context]
model = load_model(resolve_model("random:osslsp/data/gpt-oss-20b"), "float16", "cuda").model
pack_experts(model)
torch.cuda.empty_cache()
GIB = 2 ** 30
print(variant, f"weights: allocated {torch.cuda.memory_allocated() / GIB:.2f}, reserved {torch.cuda.memory_reserved() / GIB:.2f}", flush=True)
torch.cuda.reset_peak_memory_stats()
started = time.perf_counter()
runner = gpt_oss_fast.FastGptOssRunner(model, 8192 + 160)
print(variant, f"ready {time.perf_counter() - started:.1f} s, graphs {[g.bucket for g in runner.prefill_graphs]}", flush=True)
print(variant, f"after set-up: allocated {torch.cuda.memory_allocated() / GIB:.2f}, reserved {torch.cuda.memory_reserved() / GIB:.2f}, peak reserved {torch.cuda.max_memory_reserved() / GIB:.2f}", flush=True)
pools = collections.defaultdict(lambda: [0, 0, 0])
for segment in torch.cuda.memory_snapshot():
    key = str(segment.get("segment_pool_id"))
    pools[key][0] += segment["total_size"]; pools[key][1] += segment["allocated_size"]; pools[key][2] += 1
for key, (total, allocated, count) in sorted(pools.items(), key=lambda item: -item[1][0]):
    print(variant, f"pool {key}: {count} segments, reserved {total / GIB:.2f} GiB, allocated {allocated / GIB:.2f} GiB", flush=True)
for n in (2048, 8192):
    prompt = list(range(100, 100 + n))
    for _ in range(4):
        runner.cached_ids = []
        torch.cuda.synchronize(); t = time.perf_counter(); int(runner.prefill(prompt).argmax()); ms = (time.perf_counter() - t) * 1000
    print(variant, f"cold {n}: {ms:.1f} ms; reserved {torch.cuda.memory_reserved() / GIB:.2f}, peak reserved {torch.cuda.max_memory_reserved() / GIB:.2f}", flush=True)
