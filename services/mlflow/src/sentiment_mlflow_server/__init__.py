"""Marker package: this member only pins the MLflow server and its drivers for the image."""
