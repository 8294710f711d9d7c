"""The fake platform and client fixtures come from kuaishou_mp's own pytest plugin (pytest11)."""
