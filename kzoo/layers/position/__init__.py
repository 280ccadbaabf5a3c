"""kzoo.layers.position: one public class per file; each file adds its import line below."""
