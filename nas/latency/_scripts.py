"""The timing scripts ``nas profile export-ops`` writes beside the op models.

- ``time_ops.py``: Python + onnxruntime on the device (``--format onnx``).
- ``time_ops.sh``: TFLite's ``benchmark_model`` on an Android phone over adb, no Python on the
  phone (``--format tflite``); ``time_ops.sh --local`` runs the same loop on this computer with a
  stand-in for adb and ``benchmark_model_host.py`` (the LiteRT wheel's benchmark tool, printing
  benchmark_model's output) in place of the phone's binary.

The thread of a single-threaded op must stay on one kind of core: ``SOC_PRIME_CORES`` says which
cores are the prime ones per SoC (``getprop ro.board.platform``); the script checks the choice
against the cores' maximum clocks read on the phone, and uses those where there is no entry.
"""

from __future__ import annotations

import re
import sys

from nas.errors import NasError

__all__ = ["TIMING_SCRIPT", "benchmark_script", "HOST_BENCHMARK_SCRIPT", "SOC_PRIME_CORES", "check_cpu_mask",
           "TFLITE_PHONE_S_PER_OP", "EXPORT_S_PER_OP"]

# board platform -> (SoC and phones, core layout, taskset mask of the prime cores). The Pixel 7's
# layout is ../shared/device_data/README.md's hardware facts; the others are the SoC makers'
# published core configurations (cores numbered from the smallest cluster up, as their kernels
# do). On all of them the old default f0 (cores 4-7) mixes mid and prime cores.
SOC_PRIME_CORES: dict[str, tuple[str, str, str]] = {
    "gs101": ("Google Tensor (Pixel 6, 6 Pro, 6a)", "0-3 Cortex-A55, 4-5 Cortex-A76, 6-7 Cortex-X1", "c0"),
    "gs201": ("Google Tensor G2 (Pixel 7, 7 Pro, 7a)", "0-3 Cortex-A55, 4-5 Cortex-A78, 6-7 Cortex-X1", "c0"),
    "zuma": ("Google Tensor G3 (Pixel 8, 8 Pro)", "0-3 Cortex-A510, 4-7 Cortex-A715, 8 Cortex-X3", "100"),
    "zumapro": ("Google Tensor G4 (Pixel 9 series)", "0-3 Cortex-A520, 4-6 Cortex-A720, 7 Cortex-X4", "80"),
    "msmnile": ("Snapdragon 855", "0-3 Kryo 485 Silver (A55), 4-6 Kryo 485 Gold (A76), 7 Gold Prime (A76)", "80"),
    "lahaina": ("Snapdragon 888", "0-3 Cortex-A55, 4-6 Cortex-A78, 7 Cortex-X1", "80"),
    "taro": ("Snapdragon 8 Gen 1", "0-3 Cortex-A510, 4-6 Cortex-A710, 7 Cortex-X2", "80"),
    "kalama": ("Snapdragon 8 Gen 2", "0-2 Cortex-A510, 3-6 Cortex-A715/A710, 7 Cortex-X3", "80"),
    "pineapple": ("Snapdragon 8 Gen 3", "0-1 Cortex-A520, 2-6 Cortex-A720, 7 Cortex-X4", "80"),
}

# Seconds per op model, stated before an export starts. Export on this project's 2-core machine:
# ~1.7 s per .tflite op model (1,416 in about 40 min, issue 28), ~0.2 s per ONNX op model (export,
# quantization and timing together took 0.19 s, BENCHMARKS.md "host table"). Phone: benchmark_model
# runs at least 0.5 s of warm-up and 1 s of timed runs per op, plus its start over adb: ~2.5 s
# (1,416 ops took about an hour, issue 28), before the cool-down.
EXPORT_S_PER_OP = {"tflite": 1.7, "onnx": 0.2}
TFLITE_PHONE_S_PER_OP = 2.5


def check_cpu_mask(mask: str) -> str:
    """``auto`` or a non-zero hexadecimal taskset mask (``c0``, ``0x80``), normalised."""
    m = mask.strip().lower()
    if m == "auto":
        return m
    m = m.removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,16}", m) or int(m, 16) == 0:
        raise NasError(f"--cpu-mask {mask!r}: expected auto or a hexadecimal taskset mask of the cores "
                       f"to pin to, such as c0 (cores 6 and 7)")
    return format(int(m, 16), "x")


TIMING_SCRIPT = '''#!/usr/bin/env python3
"""Time the op models listed in manifest.json with onnxruntime; write results.json.

Runs on the target (any board or phone with Python, numpy and onnxruntime):
    python3 time_ops.py [--threads 1] [--runs 30]
Alternatively time each file with onnxruntime_perf_test and write results.json yourself as
{"<op key>": <median milliseconds>, ...}.
"""
import argparse, json, time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--runs", type=int, default=30)
ap.add_argument("--out", default="results.json")
args = ap.parse_args()
here = Path(__file__).resolve().parent
manifest = json.loads((here / "manifest.json").read_text())
out_path = here / args.out
results = json.loads(out_path.read_text()) if out_path.exists() else {}
opts = ort.SessionOptions()
opts.intra_op_num_threads = args.threads
opts.inter_op_num_threads = 1
for i, entry in enumerate(manifest["ops"], 1):
    if entry["key"] in results:
        continue
    sess = ort.InferenceSession(str(here / entry["file"]), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(entry["input_shape"]).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"input": x})
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        sess.run(None, {"input": x})
        times.append(time.perf_counter() - t0)
    results[entry["key"]] = min(times) * 1e3  # fastest run: steadiest on a busy device
    if i % 20 == 0 or i == len(manifest["ops"]):
        out_path.write_text(json.dumps(results, indent=0))
        print(f"{i}/{len(manifest['ops'])} timed", flush=True)
out_path.write_text(json.dumps(results, indent=0))
print(f"wrote {out_path} ({len(results)} ops); import it with: "
      f"nas profile import --name NAME --results {out_path.name}")
'''


_BENCHMARK_SCRIPT = r'''#!/bin/sh
# hwnas time_ops.sh: time the .tflite op models listed in ops.txt with TFLite's benchmark_model on
# an Android phone over adb (no Python on the phone). Every run's output goes to benchmark_log.txt,
# which `nas profile import --name NAME --results benchmark_log.txt` reads (each op's
# "Inference (avg)" figure, microseconds).
#
#   ./time_ops.sh           the phone on adb (ADB="adb -s SERIAL" ./time_ops.sh picks one of several)
#   ./time_ops.sh --local   this computer in place of the phone, to try the whole loop before a phone
#                           is at hand: a stand-in for adb runs every command here (the phone's
#                           /data/local/tmp is ./local_device), and benchmark_model_host.py (the
#                           ai-edge-litert wheel's benchmark tool, printing benchmark_model's output)
#                           stands in for benchmark_model. No pinning, no thermal check; its numbers
#                           are this computer's LiteRT timings, not a phone's.
#
# benchmark_model: the prebuilt Android binary (android_aarch64_benchmark_model) linked from
# https://ai.google.dev/edge/litert/models/measurement ("native benchmark binary"), or build it:
#     bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model
# Put it beside this script, named benchmark_model (it is pushed for you), or at
# /data/local/tmp/benchmark_model. The script stops with one line if it is in neither place.
#
# A run stopped half way (Ctrl-C, the phone unplugged) resumes where it stopped when started again:
# ops the log already holds a timing for are skipped. Delete benchmark_log.txt to time them all again.
#
# Each op: one thread, XNNPACK (TFLite's CPU default), WARMUP warm-up and RUNS timed runs
# (benchmark_model adds runs until at least 0.5 s of warm-up and 1 s of timing), pinned to the
# prime cores, then COOL_DOWN seconds of rest. About @PHONE_S@ s per op before the cool-down.
# Settings (environment variables):
#   CPU_MASK    taskset mask (hex) of the cores to run on. Default: @CPU_MASK@ (auto = the prime cores
#               of the phone's SoC from the table below, checked against the cores' maximum clocks
#               read on the phone; on a SoC not in the table, the cores with the highest maximum clock)
#   COOL_DOWN   seconds of rest between ops (default @COOL_DOWN@): a phone that heats up throttles, and
#               its later ops would time slower than its first ones
#   RUNS, WARMUP  timed and warm-up runs per op (default 50 and 5)
#   MIN_SECS    when set, passed as benchmark_model's --min_secs and --warmup_min_secs
#   DEVICE_DIR  the phone folder to work in (default /data/local/tmp)
#   PYTHON      --local: the Python that has ai-edge-litert (default @PYTHON@)
#
# Prime cores per SoC (getprop ro.board.platform): one thread pinned to a mask that mixes core types
# (f0 = cores 4-7 mixes the mid and prime cores on all of these) can migrate between them mid-run.
@SOC_COMMENTS@
set -eu
here=$(cd "$(dirname "$0")" && pwd)
LOCAL=0
case "${1:-}" in
    --local) LOCAL=1 ;;
    "") ;;
    *) echo "usage: $0 [--local]" >&2; exit 2 ;;
esac
CPU_MASK=${CPU_MASK:-@CPU_MASK@}
COOL_DOWN=${COOL_DOWN:-@COOL_DOWN@}
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
MIN_SECS=${MIN_SECS:-}
log="$here/benchmark_log.txt"
if [ "$LOCAL" = 1 ]; then
    ROOT="$here/local_device"
    adb_local() {  # the stand-in for adb: the same commands, run on this computer
        cmd=$1; shift
        case "$cmd" in
            get-state) echo device ;;
            push) cp -R "$1" "$2" ;;
            shell) sh -c "$*" ;;
            *) echo "adb_local: $cmd not supported" >&2; return 1 ;;
        esac
    }
    ADB=adb_local
    mkdir -p "$ROOT"
    SRC_BIN="$ROOT/benchmark_model.host"
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "${PYTHON:-@PYTHON@}" "$here/benchmark_model_host.py" > "$SRC_BIN"
else
    ROOT=${DEVICE_DIR:-/data/local/tmp}
    ADB=${ADB:-adb}
    SRC_BIN="$here/benchmark_model"
fi
BIN=$ROOT/benchmark_model
DIR=$ROOT/hwnas_ops

state=$($ADB get-state 2>/dev/null | tr -d '\r' || true)
if [ "$state" != device ]; then
    echo "error: no phone on adb ('$ADB get-state' said: ${state:-nothing}); connect one with USB" \
        "debugging on, or try the loop on this computer with $0 --local" >&2
    exit 2
fi
if [ -f "$SRC_BIN" ]; then
    $ADB push "$SRC_BIN" "$BIN" >/dev/null
    $ADB shell chmod +x "$BIN"
fi
if [ "$($ADB shell "[ -x $BIN ] && echo yes || echo no" | tr -d '\r')" != yes ]; then
    echo "error: benchmark_model is neither on the phone ($BIN) nor beside this script ($SRC_BIN):" \
        "download android_aarch64_benchmark_model (this script's header says where), save it as" \
        "$here/benchmark_model and run again" >&2
    exit 2
fi

PIN=""
if [ "$LOCAL" = 1 ]; then
    if [ "$CPU_MASK" != auto ]; then PIN="taskset $CPU_MASK"; fi
else
    # each core's maximum clock (kHz), read on the phone; the fastest ones as a taskset mask
    freqs=$($ADB shell 'for c in /sys/devices/system/cpu/cpu[0-9]*; do
        f=$(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null) && echo ${c##*cpu} $f; done' | tr -d '\r' || true)
    fastest=$(echo "$freqs" | awk 'NF == 2 { f[$1] = $2; if ($2 > m) m = $2 }
        END { s = 0; for (c in f) if (f[c] == m) s += 2 ^ c; if (s) printf "%x", s }')
    if [ "$CPU_MASK" = auto ]; then
        soc=$($ADB shell getprop ro.board.platform | tr -d '\r' || true)
        case "$soc" in
@SOC_CASES@
            *) table="" ;;
        esac
        if [ -n "$table" ] && { [ -z "$fastest" ] || [ "$table" = "$fastest" ]; }; then
            CPU_MASK=$table; why="the prime cores of $soc (this script's table)"
        elif [ -n "$fastest" ]; then
            CPU_MASK=$fastest; why="the cores with the highest maximum clock"
            if [ -n "$table" ]; then why="$why (this script's table says $table for $soc: the phone's clocks win)"; fi
        else
            echo "error: cannot tell the prime cores of this phone (SoC '${soc:-unknown}', clocks" \
                "unreadable): set CPU_MASK, e.g. CPU_MASK=80 $0" >&2
            exit 2
        fi
    else
        why="CPU_MASK"
    fi
    PIN="taskset $CPU_MASK"
    echo "pinning to cores $CPU_MASK: $why; maximum clocks (cpu kHz): $(echo $freqs)"
fi

thermal() {  # Android's thermal status: 0 = none, 1 = light, 2 = moderate throttling ...
    $ADB shell dumpsys thermalservice 2>/dev/null | tr -d '\r' | sed -n 's/.*Thermal Status: *\([0-9]*\).*/\1/p' | head -n 1
}
extra=""
if [ -n "$MIN_SECS" ]; then extra="--min_secs=$MIN_SECS --warmup_min_secs=$MIN_SECS"; fi
$ADB shell mkdir -p "$DIR"
$ADB push "$here/ops/." "$DIR/" >/dev/null
# a run stopped half way (Ctrl-C, the phone unplugged) resumes: ops the log already holds a timing
# for are not timed again (delete benchmark_log.txt to time everything again)
done_keys="$here/.timed_ops"
touch "$log"
awk '/^== hwnas op / { k = substr($0, 13) } /Inference \(avg\)/ { if (k != "") print k; k = "" }' "$log" > "$done_keys"
n=$(wc -l < "$here/ops.txt" | tr -d ' ')
already=$(awk '{ print $2 }' "$here/ops.txt" | grep -cxFf "$done_keys" || true)
already=${already:-0}  # GNU grep -c prints nothing when the pattern file is empty (a fresh log)
left=$((n - already))
took=$(awk "BEGIN { s = $left * (@PHONE_S@ + $COOL_DOWN); if (s < 120) printf \"%.0f s\", s; else printf \"%.0f min\", s / 60 }")
if [ "$already" -gt 0 ]; then
    echo "$already of $n ops already timed in $log: not timed again (delete it to time them all)"
fi
echo "timing $left op models: about $took on a phone (@PHONE_S@ s per op + COOL_DOWN=$COOL_DOWN s)"
if [ "$LOCAL" = 0 ]; then
    t=$(thermal || true); echo "== hwnas thermal status before: ${t:-unknown}" >> "$log"
fi
i=0
while read -r file key; do
    i=$((i + 1))
    if grep -qxF "$key" "$done_keys"; then continue; fi
    echo "== hwnas op $key" >> "$log"
    $ADB shell $PIN "$BIN" --graph="$DIR/$(basename "$file")" --num_threads=1 --use_xnnpack=true \
        --warmup_runs="$WARMUP" --num_runs="$RUNS" $extra < /dev/null >> "$log" 2>&1 || echo "benchmark_model failed" >> "$log"
    echo "$i/$n $key"
    if [ "$i" -lt "$n" ] && [ "$COOL_DOWN" != 0 ]; then sleep "$COOL_DOWN"; fi
done < "$here/ops.txt"
rm -f "$done_keys"
if [ "$LOCAL" = 0 ]; then
    t=$(thermal || true); echo "== hwnas thermal status after: ${t:-unknown}" >> "$log"
    if [ -n "$t" ] && [ "$t" -gt 0 ]; then
        echo "warning: the phone's thermal status is $t after the run (0 = not throttling): its last" \
            "ops may have run throttled; raise COOL_DOWN and time again" >&2
    fi
fi
echo "wrote $log; import it with: nas profile import --name NAME --results $log"
'''


def benchmark_script(cpu_mask: str = "auto", cool_down_s: float = 1.0, python: str | None = None) -> str:
    """time_ops.sh with its defaults filled in (``cpu_mask``: ``auto`` or a hex mask)."""
    cpu_mask = check_cpu_mask(cpu_mask)
    if not cool_down_s >= 0:
        raise NasError(f"--cool-down must be 0 or more seconds, got {cool_down_s}")
    py = python or sys.executable
    if "'" in py or '"' in py:
        py = "python3"
    comments = "\n".join(f"#   {plat:<10} {name}: {cores} -> {mask}"
                         for plat, (name, cores, mask) in SOC_PRIME_CORES.items())
    cases = "\n".join(f"            {plat}) table={mask} ;;" for plat, (_, _, mask) in SOC_PRIME_CORES.items())
    return (_BENCHMARK_SCRIPT.replace("@SOC_COMMENTS@", comments).replace("@SOC_CASES@", cases)
            .replace("@CPU_MASK@", cpu_mask).replace("@COOL_DOWN@", f"{cool_down_s:g}")
            .replace("@PHONE_S@", f"{TFLITE_PHONE_S_PER_OP:g}").replace("@PYTHON@", py))


HOST_BENCHMARK_SCRIPT = r'''#!/usr/bin/env python3
"""Stand-in for TFLite's benchmark_model on this computer (time_ops.sh --local).

Runs a .tflite model with the ai-edge-litert wheel's benchmark tool
(ai_edge_litert/tools/benchmark_litert_model.py: its environment, CompiledModel on the CPU
accelerator, which is XNNPACK, and its random inputs) and prints what benchmark_model prints,
timings in microseconds. Like benchmark_model it runs at least --warmup_runs warm-up runs and
0.5 s of them, then at least --num_runs timed runs and 1 s of them (--warmup_min_secs,
--min_secs). The tool's own summary rounds to 0.01 ms, too coarse for one op, so the runs are
timed here with the same clock (time.perf_counter) around the same call.
"""
import argparse
import os
import statistics
import sys
import time

from ai_edge_litert.tools import benchmark_litert_model as tool

ap = argparse.ArgumentParser()
ap.add_argument("--graph", required=True)
ap.add_argument("--num_threads", type=int, default=1)
ap.add_argument("--use_xnnpack", default="true")
ap.add_argument("--warmup_runs", type=int, default=1)
ap.add_argument("--num_runs", type=int, default=50)
ap.add_argument("--warmup_min_secs", type=float, default=0.5)
ap.add_argument("--min_secs", type=float, default=1.0)
args = ap.parse_args()
if args.use_xnnpack.lower() not in ("true", "1"):
    sys.exit("benchmark_model_host.py: only XNNPACK (LiteRT's CPU accelerator) is available here")
print("STARTING!")
print(f"Min num runs: [{args.num_runs}]")
print(f"Num threads: [{args.num_threads}]")
print(f"Graph: [{args.graph}]")
print("Use xnnpack: [1]")
print("(stand-in for benchmark_model on this computer: ai-edge-litert's benchmark_litert_model, CPU)", flush=True)
if not os.path.isfile(args.graph):
    print(f"ERROR: File {args.graph} does not exist")
    sys.exit(1)
CompiledModel, Accelerator, Environment, EnvironmentOptions, Options, CpuOptions = tool._import_litert()
targs = argparse.Namespace(model=args.graph, use_npu=False, use_gpu=False, no_cpu=False,
                           require_full_delegation=False, runtime_path="", compiler_plugin_path="",
                           dispatch_library_path="", num_threads=args.num_threads)
t0 = time.perf_counter()
env = tool.create_environment(targs, Environment, EnvironmentOptions)
options = tool.create_model_options(targs, Options, CpuOptions, tool.build_hardware_accelerators(targs, Accelerator))
model = CompiledModel.from_file(args.graph, environment=env, options=options)
init_us = (time.perf_counter() - t0) * 1e6
print(f"The input model file size (MB): {os.path.getsize(args.graph) / 1e6:g}")
print(f"Initialized session in {init_us / 1e3:g}ms.")
sig = list(model.get_signature_list())[0]
inputs, outputs = model.get_input_tensor_details(sig), model.get_output_tensor_details(sig)
in_buf = {n: model.create_input_buffer_by_name(sig, n) for n in inputs}
out_buf = {n: model.create_output_buffer_by_name(sig, n) for n in outputs}
for n, b in in_buf.items():
    tool.fill_random_input(b, inputs[n])


def runs(n, secs):
    print(f"Running benchmark for at least {n} iterations and at least {secs:g} seconds but terminate if "
          f"exceeding 150 seconds.")
    us, start = [], time.perf_counter()
    while len(us) < n or (time.perf_counter() - start < secs and time.perf_counter() - start < 150):
        t = time.perf_counter()
        model.run_by_name(sig, in_buf, out_buf)
        us.append((time.perf_counter() - t) * 1e6)
    std = statistics.pstdev(us) if len(us) > 1 else 0.0
    print(f"count={len(us)} first={us[0]:.0f} curr={us[-1]:.0f} min={min(us):.0f} max={max(us):.0f} "
          f"avg={statistics.mean(us):g} std={std:.0f}")
    print()
    return us


warm = runs(args.warmup_runs, args.warmup_min_secs)
timed = runs(args.num_runs, args.min_secs)
print(f"Inference timings in us: Init: {init_us:.0f}, First inference: {warm[0]:.0f}, "
      f"Warmup (avg): {statistics.mean(warm):g}, Inference (avg): {statistics.mean(timed):g}")
'''
