"""The Textual dashboard (a later issue)."""
