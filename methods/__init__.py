"""Method plugins, one file each, installed as the package `scenebias_methods` and found through its
`scenebias.methods` entry point (pyproject.toml) like any third-party plugin. Importing the package imports every
module in this folder; a file that fails to import is an error naming it."""
from scenebias.plugins import import_plugin_modules

import_plugin_modules(__name__, __path__)
