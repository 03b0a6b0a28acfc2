#!/usr/bin/env bash
# Host profile fidelity: time the ops of sampled candidates, fit the calibration on one sample,
# validate on another (different seed), fp32 and int8. Usage: benchmarks/host_fidelity.sh SPACE N_CAL N_VAL
set -euo pipefail
space=${1:-mobilenetv3}; ncal=${2:-12}; nval=${3:-20}
/usr/bin/time -f "build+calibrate wall %e s" nas profile build --device host --space "$space" --samples "$ncal" --calibrate "$ncal" --seed 0
/usr/bin/time -f "validate wall %e s" nas profile validate --device host --space "$space" --samples "$nval" --seed 1
