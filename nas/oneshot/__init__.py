"""Weight-sharing: train a supernet once, rank or extract its members (`nas supernet`)."""
