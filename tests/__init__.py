"""The tests of hscl. The folders and modules mirror src/hscl/: the tests of ``src/hscl/<folder>/<module>.py`` are
``tests/<folder>/test_<module>.py``, those of a top-level module ``tests/test_<module>.py`` (a leading underscore
dropped: ``_validation.py`` -> ``test_validation.py``). ``tests/test_layout.py`` holds the rule, its exceptions and
the project-level checks that mirror no module."""
