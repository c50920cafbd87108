"""sentiment_inference: the FastAPI service that serves the registry's champion sentiment model."""

__version__ = "0.1.0"
