"""Virtual sites on Ray: bundled datasets, partitions, dirt, the fedlife-sim CLI."""
