#!/bin/bash
# Session 10, last call: branch window (the chunked long-prompt GEMMs launch a chunk's share of programs): GPU tests, then the MXFP4 bench.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/s15/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s10f
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; cat ../commit; python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
stamp pytest; timeout 55 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py -k "long_prompt" > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -3 $R/$D-pytest.log
stamp bench; timeout 105 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --experts mxfp4 --max-gpu-memory 16 --no-seed-recipe --repeats 3 > $R/$D-bench.log 2>&1; echo "rc=$?" >> $R/$D-bench.log; grep -v -i warn $R/$D-bench.log | tail -16
stamp end
