"""colander schemas of request bodies, one module per resource, built on strict types."""
