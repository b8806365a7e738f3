"""The web app: JSON API, CAP output, the operator console and the public page."""
