#!/bin/bash
# The first H200 calls for branch decode5 (run from the branch's checkout), logs under $OUT:
#   bash benchmarks/results/h200-decode5-run.sh check   # GPU tests of the fusions, then old vs new (<= 400 s)
#   bash benchmarks/results/h200-decode5-run.sh bench   # the #17 bench on the branch (<= 210 s)
export PYTHONPATH=.
R=$OUT; D=h200-decode5
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
if [ "$1" = check ]; then
  stamp pytest; timeout 100 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py -k "attention_output or decode_attention or router or runner_matches_transformers or mxfp4_experts_match" > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
  stamp launches; timeout 290 python3 benchmarks/gpu_decode_launches.py --experts mxfp4,fp16 > $R/$D-launches.log 2>&1; echo "rc=$?" >> $R/$D-launches.log; tail -30 $R/$D-launches.log
fi
if [ "$1" = bench ]; then
  stamp bench; timeout 200 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --experts fp16,mxfp4 --no-seed-recipe --repeats 3 > $R/$D-bench.log 2>&1; echo "rc=$?" >> $R/$D-bench.log; tail -25 $R/$D-bench.log
fi
stamp end
