"""Private helpers: no stability promise outside cckit."""
