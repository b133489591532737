"""Shared by the diagnostics' test modules (import from ``tests.diagnostics.conftest``)."""

import hscl

#: The hardening settings the recorder and the callback record each epoch.
SETTINGS = {"beta=1": hscl.ExponentialTilt(1.0), "tau=e^-0.5": hscl.Threshold(0.6065306597)}
