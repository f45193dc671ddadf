raise AssertionError("glue for a plugin that is not there is never imported")
