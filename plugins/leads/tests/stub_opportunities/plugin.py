"""A stand-in for the opportunities plugin in the leads tests, on a site that has none:
the contract convert.py writes against (``name``, ``account_id``, ``amount``,
``date_closed``, ``sales_stage`` required). Not shipped: loaded as an extra plugin."""
PLUGIN_NAME = "opportunities"
__version__ = "0.1.0"
