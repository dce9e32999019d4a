"""The plan engine every planning command runs: the plan model (`plan`), the one place that mutates
(`executor`), and the stages from desired state to report (`pipeline.run_plan`). It knows no resource: the
planners in account/ and targets/ build plans from its model, and only its executor makes mutating calls.
"""
