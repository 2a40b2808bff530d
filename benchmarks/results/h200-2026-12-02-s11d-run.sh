#!/bin/bash
# Session 11, fourth call: GPU tests of the merged code, the weights-first packed GEMMs' sweep, the decode-launch variants, the #17 bench (stock, FP16, MXFP4 with the accuracy check).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/d/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11d
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
stamp pytest; timeout 100 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
stamp prefill; timeout 130 python3 benchmarks/gpu_prefill_experts.py > $R/$D-prefill.log 2>&1; echo "rc=$?" >> $R/$D-prefill.log; grep -v -i warn $R/$D-prefill.log | tail -40
stamp launches; timeout 100 python3 benchmarks/gpu_decode_launches.py --experts mxfp4 --budget 85 > $R/$D-launches.log 2>&1; echo "rc=$?" >> $R/$D-launches.log; grep -v -i warn $R/$D-launches.log | tail -10
stamp bench; timeout 225 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 3 --experts fp16,mxfp4 > $R/$D-bench.log 2>&1; echo "rc=$?" >> $R/$D-bench.log; grep -v -i warn $R/$D-bench.log | grep -v "^\[bench\] stock" | tail -20
stamp end
