"""MLflow entry-point plugins and the router pyfunc model code."""
