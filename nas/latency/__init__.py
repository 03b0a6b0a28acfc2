"""Latency prediction: device profiles, their tables, the estimator, calibration, host timing, onboarding."""

from nas.latency._calibration import Calibration
from nas.latency._estimator import FEATURES, Estimator, nnls, op_features, select_terms
from nas.latency._fit import error_stats
from nas.latency._host import (
    LITERT_HINT,
    RUNTIMES,
    measure_candidate,
    measure_op,
    measure_ops,
    network_runner,
    require_runtime,
)
from nas.latency._junctions import fit_junctions, junction_melems, measure_junctions
from nas.latency._onboard import (
    FLOOR_MARGIN,
    ImportedProfile,
    export_ops,
    fit_measurements,
    import_results,
    ops_to_export,
)
from nas.latency._profile import DeviceProfile, OpLatency, device_names, load_device, profile_files, read_table
from nas.latency._scripts import EXPORT_S_PER_OP, SOC_PRIME_CORES, TFLITE_PHONE_S_PER_OP, check_cpu_mask
from nas.latency._validate import calibrate_host, end_to_end, kendall_tau, time_ops_of, validate_profile
from nas.latency._yardstick import (
    ROUNDS,
    RUNS,
    STATS,
    YARDSTICK_STAT,
    agreement,
    interleaved_order,
    time_consecutive,
    time_interleaved,
)

__all__ = [
    "LITERT_HINT",
    "RUNTIMES",
    "ROUNDS",
    "RUNS",
    "STATS",
    "YARDSTICK_STAT",
    "agreement",
    "interleaved_order",
    "measure_op",
    "measure_ops",
    "network_runner",
    "require_runtime",
    "time_consecutive",
    "time_interleaved",
    "Calibration",
    "EXPORT_S_PER_OP",
    "FLOOR_MARGIN",
    "ImportedProfile",
    "SOC_PRIME_CORES",
    "TFLITE_PHONE_S_PER_OP",
    "check_cpu_mask",
    "ops_to_export",
    "DeviceProfile",
    "Estimator",
    "FEATURES",
    "select_terms",
    "OpLatency",
    "calibrate_host",
    "fit_junctions",
    "measure_junctions",
    "junction_melems",
    "device_names",
    "end_to_end",
    "error_stats",
    "export_ops",
    "fit_measurements",
    "import_results",
    "kendall_tau",
    "load_device",
    "measure_candidate",
    "nnls",
    "op_features",
    "profile_files",
    "read_table",
    "validate_profile",
    "time_ops_of",
]
