"""The config: the defaults (`defaults`) and the one schema that checks every field (`schema`)."""
