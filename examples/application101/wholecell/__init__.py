"""The Whole Cell Model of Escherichia coli (placeholder)."""
