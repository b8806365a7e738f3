"""warncast publisher: the warning model, workflow, storage and the web app."""
