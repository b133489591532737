"""The paper's experiments, each one resumable command (``hscl reproduce ...``)."""
