"""The applications shipped with CRBM, built on the kernel like any plugin: each
subpackage registers itself through the kernel's hooks (``plugin.py``), as the plugin
loader's built-in plugins (``core.kernel.plugins.BUILTIN_PLUGINS``)."""
