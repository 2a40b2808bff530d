#!/bin/bash
# Session 11, first call: PDL on the decode kernels (GPU tests, the decode-launch variants).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/a/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11a
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; cat ../commit; python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1; cat $R/$D-env.log
stamp pytest; timeout 150 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
stamp launches; timeout 220 python3 benchmarks/gpu_decode_launches.py --experts mxfp4 --budget 190 > $R/$D-launches.log 2>&1; echo "rc=$?" >> $R/$D-launches.log; grep -v -i warn $R/$D-launches.log | tail -14
stamp end
