"""Events API listeners (mentions, DMs, App Home), one module each."""
