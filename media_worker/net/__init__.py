"""The only code that does I/O: asyncio shells that drive the sans-I/O protocol core."""
