"""DuckDB read models and the analytics behind them."""
