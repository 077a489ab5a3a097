"""Building, documenting and publishing Hub folders (never shipped to the Hub itself)."""
