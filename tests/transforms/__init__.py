"""Tests of hscl.transforms, one test module per source module."""
