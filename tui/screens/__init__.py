"""The dashboard's screens: a pane per resource, and the drill-downs pushed over them."""
