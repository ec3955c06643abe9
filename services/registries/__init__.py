"""The container registry the servers share: built images are pushed there and pulled by digest."""
