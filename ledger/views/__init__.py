"""Staff screens for the AIQ mirror: invoices, customers, documents, sync."""
