"""Finding frames, reading their pixels and their capture times."""
