"""xAPI statement models, vocabulary and the translation of video events into statements."""
