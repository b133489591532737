"""Tests of hscl.training, one test module per source module."""
