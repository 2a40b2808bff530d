#!/bin/bash
# H200 calls for branch overlap (run from the checkout with PYTHONPATH set), each under the 10-minute
# limit: `bash h200-overlap-run.sh kernels` (~3 min: one layer's experts at 2k and 8k tokens,
# sequential against overlapped unpacking, then the GPU tests), then, if an overlap setting won,
# `OVERLAP=4,0.5,0 bash h200-overlap-run.sh bench` (~9 min: the #17 bench with the sequential path,
# then with kernels.DEQUANTIZED_EXPERTS_OVERLAP = UnpackOverlap(4, 0.5, 0); "none" for a full
# unpack grid). Logs under $OUT.
R=$OUT; D=h200-$(date -u +%Y-%m-%d)-overlap
export TRITON_DEFAULT_FP_FUSION=1
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
if [ "$1" = kernels ]; then
  stamp kernels; timeout 150 python3 benchmarks/gpu_prefill_overlap.py --tokens 2048,8192 --budget 110 > $R/$D-kernels.log 2>&1
  echo "rc=$?" >> $R/$D-kernels.log; grep -v Warn $R/$D-kernels.log
  stamp pytest; timeout 120 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py \
    -k "overlapped or long_prompt" > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
fi
if [ "$1" = bench ]; then
  OVERLAP=${OVERLAP:-4,0.5,0}
  for path in sequential overlapped; do
    stamp bench $path
    timeout 270 python3 -c "
import sys
from osslsp.engine import kernels
if '$path' == 'overlapped':
    chunk, share, priority = '$OVERLAP'.split(',')
    kernels.DEQUANTIZED_EXPERTS_OVERLAP = kernels.UnpackOverlap(int(chunk), None if share == 'none' else float(share),
                                                                int(priority))
from osslsp.cli import main
sys.exit(main(['bench', '--model', 'random-mxfp4:osslsp/data/gpt-oss-20b', '--experts', 'mxfp4', '--no-seed-recipe', '--repeats', '3']))
" > $R/$D-bench-$path.log 2>&1; echo "rc=$?" >> $R/$D-bench-$path.log; tail -16 $R/$D-bench-$path.log
  done
fi
stamp end
