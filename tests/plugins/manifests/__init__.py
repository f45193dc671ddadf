"""Test plugins with a manifest (plugin.yaml) or a hook that boot must refuse, each with one
line naming the file and the reason (tests/kernel/test_plugin_manifest.py), and one with glue."""
