#!/bin/bash
# Session 11, last call: the first start's load and ready time with MXFP4 experts once more (Triton's cache empty), then where the greedy continuations of ours (FP16 experts) and Transformers first differ.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/f/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11f
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
stamp ready; timeout 110 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 1 --contexts 2048 --experts mxfp4 --max-gpu-memory 16 > $R/$D-ready.log 2>&1; echo "rc=$?" >> $R/$D-ready.log; grep -E "ready|load time|decode|rc=" $R/$D-ready.log | grep -v -i warn | tail -6
stamp check; timeout 140 python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 1 --contexts 2048 --experts fp16 > $R/$D-check.log 2>&1; echo "rc=$?" >> $R/$D-check.log; grep -E "^check|rc=" $R/$D-check.log
stamp end
