"""The shell: settings, persistence wiring, the CLI and the HTTP app."""
