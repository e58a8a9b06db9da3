"""SOAP operation handlers, one module per family; each registers itself with @operation."""
