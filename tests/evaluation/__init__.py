"""Tests of hscl.evaluation, one test module per source module."""
