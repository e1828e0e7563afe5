"""Price history: accepted prices recorded once per snapshot, read back as series and sparklines."""
