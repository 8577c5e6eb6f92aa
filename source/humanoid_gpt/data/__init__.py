"""Motion datasets: where they live and how to download them."""
