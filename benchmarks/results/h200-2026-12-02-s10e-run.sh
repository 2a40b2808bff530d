#!/bin/bash
# Session 10, final call on the merged code: GPU tests, the #17 bench capped at 16 GiB (MXFP4) and uncapped (stock, FP16, MXFP4), the team load with MXFP4 experts.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/s14/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s10e
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
{ stamp start; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; cat ../commit; python3 -c "import torch,transformers,triton;print(torch.__version__,transformers.__version__,triton.__version__)"; } > $R/$D-env.log 2>&1
bench() { local name=$1 limit=$2 overlap=$3; shift 3; stamp $name; timeout $limit python3 -c "
import sys
from osslsp.engine import kernels
if '$overlap' == 'off':
    kernels.DEQUANTIZED_EXPERTS_OVERLAP = None
from osslsp.cli import main
sys.exit(main(['bench', '--model', 'random-mxfp4:osslsp/data/gpt-oss-20b', '--no-seed-recipe', '--repeats', '3'] + sys.argv[1:]))
" "$@" > $R/$D-$name.log 2>&1; echo "rc=$?" >> $R/$D-$name.log; grep -v -i warn $R/$D-$name.log | grep -v "^\[bench\] stock" | tail -16; }
stamp pytest; timeout 120 python3 -m pytest -q -p no:cacheprovider tests/engine/test_fast_gpu.py > $R/$D-pytest.log 2>&1; echo "rc=$?" >> $R/$D-pytest.log; tail -3 $R/$D-pytest.log
bench capped 250 default --experts mxfp4 --max-gpu-memory 16
bench both 200 default --experts fp16,mxfp4
stamp load; timeout 120 python3 benchmarks/load.py --model random-mxfp4:osslsp/data/gpt-oss-20b --experts mxfp4 --max-batch 32 --modes typing --clients 1,16,32 --seconds 6 --json $R/$D-load-mxfp4.json > $R/$D-load-mxfp4.log 2>&1; echo "rc=$?" >> $R/$D-load-mxfp4.log; grep -E "N=|runs|rc=" $R/$D-load-mxfp4.log | tail -8
stamp end
