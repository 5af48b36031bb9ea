"""Small helpers shared by every app (settings parsing, money)."""
