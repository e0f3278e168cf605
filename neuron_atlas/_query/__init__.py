"""How ``Atlas.neurons`` answers (internal, no stable API): ``parse`` validates a query, ``plan`` picks where the answer comes from
(stored sets, imported sets, or recomputed from the counts by the method), ``result`` builds the rows, ``notices``
writes the lines that say why a set is small and what to ask instead."""
