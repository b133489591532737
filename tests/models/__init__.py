"""Tests of hscl.models, one test module per source module."""
