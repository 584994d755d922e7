"""The dashboard's alerts: their tiers, the rules that raise them and the sounds they make."""
