"""A small application that uses notdiamond: the example the chaos harness and its pytest plugin test."""
