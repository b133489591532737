"""Tests of hscl.experiments (one test module per command)."""
