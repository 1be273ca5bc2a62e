"""Use cases of the service. They take a session (and a clock where time matters) and know
nothing of HTTP: views and CLI commands call them and commit."""
