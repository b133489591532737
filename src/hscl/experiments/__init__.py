"""The paper's experiments, each one resumable command (``hscl reproduce ...``): ``graphs`` (the ``graphs``
extra), ``images`` and ``figures`` (the ``images`` extra)."""
