"""Response curves, the budget optimizer and the plan.

Response curves (:mod:`.response`), the allocation polytope (:mod:`.polytope`), the optimizer
(:mod:`.budget`), the optimize run (:mod:`.run`) and its figures (:mod:`.plots`).
"""
