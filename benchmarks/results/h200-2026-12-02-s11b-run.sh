#!/bin/bash
# Session 11, second call: what limits the packed decode GEMVs (HBM vs L2, ncu), the decode profile with PDL.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl > /dev/null 2>&1 || exit 1
cd .gpu/b/tree && export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
R=$OUT; D=h200-2026-12-02-s11b
stamp() { echo "# $(date -u +%H:%M:%S) $*"; }
stamp limits; timeout 120 python3 benchmarks/gpu_packed_gemv_limits.py > $R/$D-limits.log 2>&1; echo "rc=$?" >> $R/$D-limits.log; grep -v -i warn $R/$D-limits.log
stamp ncu; timeout 150 ncu -k regex:gemv_kernel -c 4 --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis --section SchedulerStats python3 benchmarks/gpu_packed_gemv_limits.py --once > $R/$D-ncu.log 2>&1; echo "rc=$?" >> $R/$D-ncu.log; grep -E "gemv_kernel|Memory Throughput|DRAM Throughput|Duration|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Stall|Theoretical Occ|One or More|Warp Cycles Per Issued|rc=" $R/$D-ncu.log | head -80
stamp profile; timeout 200 python3 benchmarks/gpu_profile.py --experts mxfp4 > $R/$D-profile.log 2>&1; echo "rc=$?" >> $R/$D-profile.log; grep -v -i warn $R/$D-profile.log | head -95
stamp end
