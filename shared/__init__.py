"""Code shared by the gateway and the dispatcher. Imports neither of them."""
