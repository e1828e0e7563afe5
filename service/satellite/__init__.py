"""The satellite box: on-demand tile cache, the stitched picture, tile arithmetic and their routes."""
