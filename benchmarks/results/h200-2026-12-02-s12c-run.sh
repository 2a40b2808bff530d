#!/bin/bash
# Session 12, third call: the greedy pick kernel held by the runner. GPU tests; the #17 bench capped
# at 16 GiB in a fresh Triton cache (a first start); uncapped stock, FP16, MXFP4 with the accuracy
# check (32 of 32 greedy tokens); the team load with MXFP4 experts.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
R=$OUT; D=h200-2026-12-02-s12c
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
cd .gpu/c/final && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, triton; print(torch.__version__, transformers.__version__, triton.__version__)" > $R/$D-env.log 2>&1
stamp pytest; TRITON_CACHE_DIR=/tmp/tc-tests timeout 150 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -3 $R/$D-pytest.log
bench() { local name=$1 limit=$2; shift 2; stamp $name; timeout $limit python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 3 "$@" > $R/$D-$name.log 2>&1; echo "rc=$?" >> $R/$D-$name.log; grep -v -i warn $R/$D-$name.log | grep -v "^\[bench\] stock" | tail -19; }
export TRITON_CACHE_DIR=/tmp/tc-first
bench capped 150 --experts mxfp4 --max-gpu-memory 16
bench both 240 --experts fp16,mxfp4
stamp load; timeout 120 python3 benchmarks/load.py --model random-mxfp4:osslsp/data/gpt-oss-20b --experts mxfp4 --max-batch 32 --modes typing --clients 1,16,32 --seconds 6 --json $R/$D-load-mxfp4.json > $R/$D-load-mxfp4.log 2>&1; echo "rc=$?" >> $R/$D-load-mxfp4.log; grep -E "N=|runs|rc=" $R/$D-load-mxfp4.log | tail -8
stamp end
