"""Reading remote git repositories (branch heads) without cloning them."""
