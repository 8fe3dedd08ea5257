"""Writing results to disk safely: streamed array archives, atomic files."""
