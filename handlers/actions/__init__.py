"""Block Kit actions (buttons, selects), one module each."""
