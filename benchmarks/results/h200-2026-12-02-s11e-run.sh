#!/bin/bash
# Session 11, final call: GPU tests; if they fail on the final tree, the benches run on the safe tree (without the one-launch greedy pick). Then the decode-launch variants, the small-prompt packed GEMMs, the #17 bench capped at 16 GiB and uncapped (stock, FP16, MXFP4, accuracy check), the team load with MXFP4 experts.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11e; G=$PWD/.gpu/e
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
TREE=final
cd $G/final && stamp pytest-final; timeout 110 env PYTHONPATH=/tmp/site:$PWD python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; rc=$?; echo "rc=$rc" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
if [ $rc -ne 0 ]; then TREE=safe; cd $G/safe && stamp pytest-safe; timeout 110 env PYTHONPATH=/tmp/site:$PWD python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest-safe.log 2>&1; echo "rc=$?" >> $R/$D-pytest-safe.log; tail -3 $R/$D-pytest-safe.log; fi
cd $G/$TREE && export PYTHONPATH=/tmp/site:$PWD && echo "tree: $TREE $(cat ../$TREE.commit)" | tee $R/$D-env.log
bench() { local name=$1 limit=$2; shift 2; stamp $name; timeout $limit python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 3 "$@" > $R/$D-$name.log 2>&1; echo "rc=$?" >> $R/$D-$name.log; grep -v -i warn $R/$D-$name.log | grep -v "^\[bench\] stock" | tail -17; }
bench capped 110 --experts mxfp4 --max-gpu-memory 16
bench both 230 --experts fp16,mxfp4
stamp load; timeout 110 python3 benchmarks/load.py --model random-mxfp4:osslsp/data/gpt-oss-20b --experts mxfp4 --max-batch 32 --modes typing --clients 1,16,32 --seconds 6 --json $R/$D-load-mxfp4.json > $R/$D-load-mxfp4.log 2>&1; echo "rc=$?" >> $R/$D-load-mxfp4.log; grep -E "N=|runs|rc=" $R/$D-load-mxfp4.log | tail -8
stamp launches; timeout 75 python3 benchmarks/gpu_decode_launches.py --experts mxfp4 --budget 60 > $R/$D-launches.log 2>&1; echo "rc=$?" >> $R/$D-launches.log; grep "decode step" $R/$D-launches.log
stamp end
