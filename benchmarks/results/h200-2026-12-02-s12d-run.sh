#!/bin/bash
# Session 12, fourth call: the #17 stretch. llama.cpp (llama-cpp-python 0.3.36's vendored source,
# trimmed) built with CUDA for sm_90 (llama-bench only) while the random MXFP4 checkpoint is written
# and converted to GGUF by llama.cpp's converter; llama-bench on it (cold 2k prompt, decode at a 2k
# context); then, if time is left, our MXFP4 column on the same weights in the same call.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
R=$OUT; D=h200-2026-12-02-s12d; E=$PWD/.gpu/e; START=$(date +%s)
stamp() { echo "# $(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s $*"; }
cd $E/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OSSLSP_CACHE_DIR=/tmp/osslsp-cache
mkdir -p /tmp/l && tar xzf $E/llama.cpp.tgz -C /tmp/l
nvcc --version | tail -2; nproc
stamp convert-start
( timeout 400 python3 benchmarks/llama_cpp_peer.py --llama-cpp /tmp/l/llama.cpp > $R/$D-convert.log 2>&1; echo "rc=$?" >> $R/$D-convert.log ) &
CONVERT=$!
stamp build
cmake -S /tmp/l/llama.cpp -B /tmp/l/build -G Ninja -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DCMAKE_BUILD_TYPE=Release > $R/$D-build.log 2>&1 || { tail -20 $R/$D-build.log; }
timeout 420 cmake --build /tmp/l/build --target llama-bench -j 16 >> $R/$D-build.log 2>&1; echo "build rc=$?" | tee -a $R/$D-build.log
grep -E "error|Error" $R/$D-build.log | head -5
stamp built; wait $CONVERT; grep -E "GGUF|rc=|Error|error" $R/$D-convert.log | tail -5
stamp bench-llama
timeout 100 python3 benchmarks/llama_cpp_peer.py --llama-cpp /tmp/l/llama.cpp --llama-bench /tmp/l/build/bin/llama-bench --json $R/$D-llama.json > $R/$D-llama.log 2>&1; echo "rc=$?" >> $R/$D-llama.log; tail -6 $R/$D-llama.log
LEFT=$(( 585 - ($(date +%s) - START) )); stamp "ours ($LEFT s left)"
if [ $LEFT -gt 75 ]; then timeout $LEFT python3 -m osslsp bench --model random-mxfp4:osslsp/data/gpt-oss-20b --no-seed-recipe --repeats 3 --experts mxfp4 > $R/$D-ours.log 2>&1; echo "rc=$?" >> $R/$D-ours.log; grep -v -i warn $R/$D-ours.log | tail -16; fi
stamp end
