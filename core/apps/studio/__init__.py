"""The Studio: administrators reshaping the metadata in the browser."""
