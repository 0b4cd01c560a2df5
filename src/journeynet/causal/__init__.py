"""The generative journey model the interventions run in.

The funnel process (:mod:`.funnel`), its data (:mod:`.data`), its likelihood fit (:mod:`.fit`)
and interventions (:mod:`.interventions`); :mod:`.sample` draws worlds from the engine's own
family (with exact answers in :mod:`.sample_truth` and the Bayes posterior in
:mod:`.posterior`) to test the fit against itself.
"""
