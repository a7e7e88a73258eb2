"""xalbench-mlflow: an MLflow logger built only on xalbench's lifecycle hooks."""

__version__ = "0.1.0"
