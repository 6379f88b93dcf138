"""Cloud Function entry points: thin wrappers that hand off to ``functions/``.

Nothing heavy is imported here at module level (cold start), and never apache_beam.
"""
