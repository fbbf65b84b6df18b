"""Training of gpt-oss-tiny (imports torch and transformers): never imported by the server."""
