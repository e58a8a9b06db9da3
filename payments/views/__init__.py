"""Staff screens for money in: inbox, payment detail and allocation editor, approvals."""
