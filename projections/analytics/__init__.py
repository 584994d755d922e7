"""Pure statistics over benchmark results: change points, regressions, anomalies, forecasts."""
