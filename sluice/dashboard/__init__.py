"""Dashboard: the cooked tables drawn as one self-contained HTML page (``page``, ``charts``)."""
