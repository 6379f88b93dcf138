"""Ingest: a landing object in, a claimed outcome out.

``door`` filters the storage event and runs the rest: ``claims`` (exactly once per
generation), ``validation`` (streaming, at the door, through ``byte_checks``), ``quarantine``
(a rejected file's copy and reason) and ``launch`` (the pipeline's parameters and the
launcher adapters: ``dataflow`` here, ``local.launcher`` on a laptop).
"""
