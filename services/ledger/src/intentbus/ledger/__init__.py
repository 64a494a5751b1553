"""The intentbus position ledger: applies every execution result once and keeps positions."""
