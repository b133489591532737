"""Tests of hscl.losses, one test module per loss module, and the loss family's cross-cutting suites: against the
float64 reference (test_reference_match.py), the PyTorch Metric Learning oracle (test_oracle_pml.py), identities
(test_identities.py), numerical stability (test_stability.py) and gradcheck (test_gradcheck.py)."""
