#!/bin/bash
# The first H200 call for branch prefill5 (run from its checkout with PYTHONPATH set): the experts of
# one layer at 512 / 2k / 8k tokens (main's scratch path, this branch's, the wide-block GEMMs), the
# GPU tests, then the #17 bench with the scratch path and with the wide GEMMs. Logs under $OUT.
R=$OUT; D=h200-$(date -u +%Y-%m-%d)-prefill5
export TRITON_DEFAULT_FP_FUSION=1
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
stamp kernels; timeout 200 python3 benchmarks/gpu_prefill_experts.py --tokens 2048,512,8192 > $R/$D-kernels.log 2>&1; echo "rc=$?" >> $R/$D-kernels.log; cat $R/$D-kernels.log | grep -v Warn
stamp pytest; timeout 60 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py -k "long_prompt or grouped or prefill_chunk" > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
TILES=${TILES:-4,64,64,64,8,3}  # the kernel log's best wide tiles at 2,048 tokens
for path in scratch wide; do
  stamp bench $path
  timeout 150 python3 -c "
import sys
from osslsp.engine import kernels
if '$path' == 'wide':
    kernels.MXFP4_WIDE_TILES = tuple(int(v) for v in '$TILES'.split(','))
from osslsp.cli import main
sys.exit(main(['bench', '--model', 'random-mxfp4:osslsp/data/gpt-oss-20b', '--experts', 'mxfp4', '--no-seed-recipe', '--repeats', '3']))
" > $R/$D-bench-$path.log 2>&1; echo "rc=$?" >> $R/$D-bench-$path.log; tail -16 $R/$D-bench-$path.log
done
stamp end
