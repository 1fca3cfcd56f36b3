"""Modal submissions, one module each."""
