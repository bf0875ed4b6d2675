"""Documents to sentences: input readers, ingestion and sentence splitting."""
