"""Why the greedy stream's picks differ from decode_one's argmax: per replay, the graph's pick,
token, position and the pick kernel's ticket counter against the host argmax; then variants."""
import torch
from transformers import GptOssConfig, GptOssForCausalLM
from osslsp.engine import kernels, kernels_torch
from osslsp.engine import gpt_oss_fast
from osslsp.engine.runner import NON_FINITE

DEVICE = torch.device("cuda")
config = GptOssConfig(
    vocab_size=1000, hidden_size=256, intermediate_size=256, num_hidden_layers=4, num_attention_heads=8,
    num_key_value_heads=2, head_dim=64, num_local_experts=8, num_experts_per_tok=4, sliding_window=16,
    layer_types=["sliding_attention", "full_attention"] * 2, max_position_embeddings=4096,
    rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                  "original_max_position_embeddings": 4096, "truncate": False},
)
torch.manual_seed(0)
with DEVICE:
    model = GptOssForCausalLM(config).to(torch.float16).eval()
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0.0, 0.05)

picks = []
class Spy(kernels.GreedyPick):
    def __init__(self, device):
        super().__init__(device)
        picks.append(self)
kernels.GreedyPick = Spy
runner = gpt_oss_fast.make_runner(model, 240)
pk = picks[-1]
prompt = torch.randint(0, 1000, (200,), generator=torch.Generator().manual_seed(5)).tolist()
print("after start: counter", int(pk.counter), "graph_pick", int(runner.graph_pick), flush=True)

def report(tag):
    torch.cuda.synchronize()
    print(tag, "argmax", int(runner.graph_logits.argmax()), "graph_pick", int(runner.graph_pick), "token",
          int(runner.token), "position", int(runner.position[runner.device]), "counter", int(pk.counter), flush=True)

def stepped_and_streamed(label):
    runner.cached_ids = []
    tok = int(runner.prefill(prompt).argmax())
    stepped = [tok]
    for i in range(12):
        stepped.append(int(runner.decode_one(stepped[-1]).argmax()))
        if i < 3:
            report(f"{label} decode_one {i}")
    runner.cached_ids = []
    first = int(runner.prefill(prompt).argmax())
    streamed = [first] + list(runner.greedy_tokens(first, 12))
    report(f"{label} after stream")
    # the stream's steps with a sync after each (no replay ahead)
    runner.cached_ids = []
    first = int(runner.prefill(prompt).argmax())
    synced = [first]
    runner.token.fill_(first)
    runner.position[runner.device].fill_(200)
    for i in range(12):
        runner.graph.replay()
        torch.cuda.synchronize()
        synced.append(int(runner.graph_pick))
    ok = streamed == stepped
    print(f"{label}: stepped {stepped}\n{label}: streamed {streamed}\n{label}: synced {synced}\n{label}: MATCH={ok} SYNCED_MATCH={synced == stepped}", flush=True)
    return ok

base = stepped_and_streamed("pdl")
# the pick run eagerly on the graph's logits after a replay
runner.cached_ids = []
tok = int(runner.prefill(prompt).argmax())
logits = runner.decode_one(tok)
fresh = kernels.GreedyPick(DEVICE)
t, p, out = torch.zeros(1, dtype=torch.long, device=DEVICE), torch.tensor([200], device=DEVICE), torch.zeros(1, dtype=torch.long, device=DEVICE)
fresh(runner.graph_logits, t, p, out, NON_FINITE)
torch.cuda.synchronize()
print("eager pick on graph logits:", int(out), "argmax", int(logits.argmax()), "counter", int(fresh.counter), flush=True)

# variant: the pick launched without PDL (the rest with it)
orig_call = kernels.GreedyPick.__call__
def call_nopdl(self, *a, **k):
    saved = kernels.PDL
    kernels.PDL = False
    try:
        orig_call(self, *a, **k)
    finally:
        kernels.PDL = saved
Spy.__call__ = call_nopdl
runner.graph = None
runner._capture_decode_graph()
pk = picks[-1]
nopdl = stepped_and_streamed("pick-nopdl")
Spy.__call__ = orig_call
# variant: PDL off everywhere
kernels.PDL = False
runner.graph = None
runner._capture_decode_graph()
pk = picks[-1]
alloff = stepped_and_streamed("all-nopdl")
kernels.PDL = True
# variant: the torch twin as the pick
class TwinSpy(kernels_torch.GreedyPick):
    counter = torch.zeros(1)
import types
mod = types.SimpleNamespace(**{k: getattr(kernels, k) for k in dir(kernels) if not k.startswith("__")})
mod.GreedyPick = TwinSpy
runner.kernels = mod
runner.graph = None
runner._capture_decode_graph()
class _C: counter = torch.zeros(1)
pk = _C
twin = stepped_and_streamed("twin")
fix = "none" if base else ("nopdl" if nopdl else ("twin" if twin else "safe"))
print("FIX=" + fix)
