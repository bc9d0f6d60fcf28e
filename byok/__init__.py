"""byok: a bring-your-own-key LLM gateway (Django). ``__version__`` is shown in the admin and the API schema."""

__version__ = "0.1.0"
