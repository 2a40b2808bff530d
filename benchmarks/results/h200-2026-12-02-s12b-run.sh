#!/bin/bash
# Session 12, second call: why the greedy stream's picks differ from the decode step's argmax (the
# diagnostic prints, per replay, the graph's pick, token, position and ticket counter, then tries the
# pick without PDL, all kernels without PDL, the torch twin as the pick); the tree that fixes it
# (final: as committed; nopdl: the pick launched without PDL; twin: the torch twin in the graph)
# then runs the GPU tests, the #17 bench capped at 16 GiB in a fresh Triton cache (a first start),
# the uncapped bench and the team load.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s12b; G=$PWD/.gpu/b
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
cd $G/final && stamp diag; TRITON_CACHE_DIR=/tmp/tc-tests timeout 150 env PYTHONPATH=/tmp/site:$PWD python3 ../diag.py > $R/$D-diag.log 2>&1; echo "rc=$?" >> $R/$D-diag.log
grep -v -i warn $R/$D-diag.log | tail -40
FIX=$(grep -o "FIX=[a-z]*" $R/$D-diag.log | cut -d= -f2); TREE=final
case "$FIX" in nopdl|twin) TREE=$FIX;; esac
cd $G/$TREE && export PYTHONPATH=/tmp/site:$PWD && echo "tree: $TREE (fix: $FIX)" | tee $R/$D-env.log
stamp pytest; TRITON_CACHE_DIR=/tmp/tc-tests timeout 150 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -4 $R/$D-pytest.log
bench() { local name=$1 limit=$2; shift 2; stamp $name; timeout $limit python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 3 "$@" > $R/$D-$name.log 2>&1; echo "rc=$?" >> $R/$D-$name.log; grep -v -i warn $R/$D-$name.log | grep -v "^\[bench\] stock" | tail -19; }
export TRITON_CACHE_DIR=/tmp/tc-first
bench capped 150 --experts mxfp4 --max-gpu-memory 16
bench both 240 --experts fp16,mxfp4
stamp load; timeout 120 python3 benchmarks/load.py --model random-mxfp4:osslsp/data/gpt-oss-20b --experts mxfp4 --max-batch 32 --modes typing --clients 1,16,32 --seconds 6 --json $R/$D-load-mxfp4.json > $R/$D-load-mxfp4.log 2>&1; echo "rc=$?" >> $R/$D-load-mxfp4.log; grep -E "N=|runs|rc=" $R/$D-load-mxfp4.log | tail -8
stamp end
