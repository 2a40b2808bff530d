#!/bin/bash
# The mx4 H200 call (run from .gpu/mx4 with PYTHONPATH set): the #17 bench first (the table), then
# the engine's GPU tests with the time left. Each step bounded; logs under $OUT.
R=$OUT; D=h200-2026-12-02-s9-mx4
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
stamp bench; timeout 170 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --experts fp16,mxfp4 --no-seed-recipe --repeats 3 > $R/$D-bench.log 2>&1; echo "rc=$?" >> $R/$D-bench.log; tail -25 $R/$D-bench.log
stamp pytest; timeout 45 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
stamp end
