"""The request pipeline: an ordered list of stages, outermost first (see build.build_pipeline).

Nothing is imported here, so that a lower layer may use one stage module's helpers without
loading the whole pipeline (and cycling back to itself)."""
