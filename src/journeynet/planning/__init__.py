"""Response curves, the budget optimizer, the plan and its report.

Response curves (:mod:`.response`), what a conversion is worth (:mod:`.revenue`), the allocation
polytope (:mod:`.polytope`), the optimizer (:mod:`.budget`), objectives and target mode
(:mod:`.objectives`), the frontier and the price of constraints (:mod:`.frontier`), the settings
(:mod:`.settings`), the train run it reads (:mod:`.rundir`), scenarios (:mod:`.scenario`),
intervals (:mod:`.uncertainty`), the plan table (:mod:`.plantable`), the optimize run (:mod:`.run`),
its figures (:mod:`.plots`) and report (:mod:`.report`, :mod:`.charts`, ``templates/``).
"""
