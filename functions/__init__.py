"""Cloud Function logic: validation at the door, cooking summaries (never imports apache_beam)."""
