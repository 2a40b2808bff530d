#!/bin/bash
# The first H200 calls for branch prefill5 (run from its checkout with PYTHONPATH set), two calls
# under the 10-minute limit: `bash h200-prefill5-run.sh kernels` (one layer's experts at 2k / 512 /
# 8k tokens: main's scratch path, this branch's, the wide-block GEMMs; then the GPU tests), then
# `TILES=S,M,N,K,W,ST bash h200-prefill5-run.sh bench` with the best wide tile of the first call
# (the #17 bench with the scratch path, then with the wide GEMMs). Logs under $OUT.
R=$OUT; D=h200-$(date -u +%Y-%m-%d)-prefill5
export TRITON_DEFAULT_FP_FUSION=1
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
if [ "$1" = kernels ]; then
  stamp kernels; timeout 400 python3 benchmarks/gpu_prefill_experts.py --tokens 2048,512,8192 > $R/$D-kernels.log 2>&1
  echo "rc=$?" >> $R/$D-kernels.log; grep -v Warn $R/$D-kernels.log
  stamp pytest; timeout 120 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py \
    -k "long_prompt or grouped or prefill_chunk" > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
fi
if [ "$1" = bench ]; then
  TILES=${TILES:-4,64,64,64,8,3}
  for path in scratch wide; do
    stamp bench $path
    timeout 270 python3 -c "
import sys
from osslsp.engine import kernels
if '$path' == 'wide':
    kernels.MXFP4_WIDE_TILES = tuple(int(v) for v in '$TILES'.split(','))
from osslsp.cli import main
sys.exit(main(['bench', '--model', 'random-mxfp4:osslsp/data/gpt-oss-20b', '--experts', 'mxfp4', '--no-seed-recipe', '--repeats', '3']))
" > $R/$D-bench-$path.log 2>&1; echo "rc=$?" >> $R/$D-bench-$path.log; tail -16 $R/$D-bench-$path.log
  done
fi
stamp end
