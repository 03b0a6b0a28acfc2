"""Latency prediction: device profiles, their tables, the estimator, host measurement."""

from nas.latency.estimator import Estimator
from nas.latency.profile import (
                                 Calibration,
                                 DeviceError,
                                 DeviceProfile,
                                 OpLatency,
                                 UnknownDeviceError,
                                 device_names,
                                 load_device,
)

__all__ = ["Calibration", "DeviceError", "DeviceProfile", "Estimator", "OpLatency",
           "UnknownDeviceError", "device_names", "load_device"]
