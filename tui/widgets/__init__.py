"""Widgets and the cell formats the dashboard's screens share."""
