"""Method plugins, one file each. Every module here is imported by `scenebias.plugins.load_methods()`."""
