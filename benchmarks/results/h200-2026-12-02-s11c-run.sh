#!/bin/bash
# Session 11, third call: GPU tests with the dense GEMVs merged, their tile sweep, the packed GEMVs' limits with the chunked norm, the decode-launch variants, the decode GEMV tile sweep.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/c/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11c
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
stamp pytest; timeout 120 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
stamp dense; timeout 110 python3 benchmarks/gpu_dense_gemv.py > $R/$D-dense.log 2>&1; echo "rc=$?" >> $R/$D-dense.log; grep -v -i warn $R/$D-dense.log | tail -45
stamp limits; timeout 50 python3 benchmarks/gpu_packed_gemv_limits.py > $R/$D-limits.log 2>&1; echo "rc=$?" >> $R/$D-limits.log; grep -v -i warn $R/$D-limits.log
stamp launches; timeout 120 python3 benchmarks/gpu_decode_launches.py --experts mxfp4 --budget 100 > $R/$D-launches.log 2>&1; echo "rc=$?" >> $R/$D-launches.log; grep -v -i warn $R/$D-launches.log | tail -10
stamp sweep; timeout 140 python3 benchmarks/gpu_tile_sweep.py --parts gemv --budget 105 > $R/$D-sweep.log 2>&1; echo "rc=$?" >> $R/$D-sweep.log; grep -v -i warn $R/$D-sweep.log | tail -30
stamp end
