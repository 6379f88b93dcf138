"""The deployable layer: one thin handler per Cloud Function (``main.py`` exports them)."""
