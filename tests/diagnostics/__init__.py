"""Tests of hscl.diagnostics, one test module per source module."""
