"""Pictures: per-layer plots, the accuracy-complexity chart, filters and feature maps, the HTML report."""
