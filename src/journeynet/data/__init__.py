"""Reading and validating inputs, and building journeys.

:mod:`.inputs` reads and checks files; :mod:`.journeys` builds journey arrays, the vocabulary and splits.
"""
