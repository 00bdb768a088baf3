"""Command-line plumbing every command shares: argument types, checked output files, progress."""
