"""Component images built on this machine from packages (Debian, npm), for nodes that reach no
container registry: `oci` writes OCI image archives, `debian` keeps the cached bookworm base
root, `build` turns a component's `LocalImage` recipe into a cached archive, `containerd` loads
archives into a node's runtime and `inventory` says what is built and loaded. Their names come
from `citykit/contract/image_refs.py`, which the component contract uses."""
