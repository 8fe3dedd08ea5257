"""Model loading, the layer tree, inspection arithmetic and the bundled zoo."""
