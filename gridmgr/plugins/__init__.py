"""The layer contract (Field, Layer, Metric) and the registry that finds layers."""
