"""flywheel: a versioned dataset repository for the data flywheel of a fine-tuned LLM."""

__version__ = "0.1.0"
