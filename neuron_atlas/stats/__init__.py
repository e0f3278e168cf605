"""The statistics, in numpy with no I/O: the LAPE formula, moment scores, derived tables."""
