"""Field report: the example of a release engineer's own application.

Its package is deliberately named ``app``, the most common name for one's own
code; the model behind it is reached through ``mlbundle_runtime`` only.
"""
