"""Cook: the scheduled work on loaded data.

``summaries`` rebuilds the cooked tables from ``sql/``, ``alerts`` checks each contract's
freshness and dead-letter rules, ``sweep`` settles or relaunches claims whose pipeline died,
``reconcile`` ingests landing files whose event never came.
"""
