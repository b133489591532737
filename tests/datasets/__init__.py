"""Tests of hscl.datasets, one test module per source module."""
