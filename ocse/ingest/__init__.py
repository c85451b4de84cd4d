"""The ingestion gate: landing files in, validated and pseudonymised rows out."""
