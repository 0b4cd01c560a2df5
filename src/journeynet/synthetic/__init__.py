"""Generated worlds with their exact truth, written independently of the engine.

Nothing here imports :mod:`journeynet.causal`: a generator that shares the engine's model
could only produce worlds the engine already gets right.
"""
