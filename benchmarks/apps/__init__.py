"""The applications the benchmark serves: microweb's and its peers', each the same few routes."""
