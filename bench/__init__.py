"""The intentbus benchmark suite: raw bus vs pipeline, codec, footprint (``just bench``)."""
