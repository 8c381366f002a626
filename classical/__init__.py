"""Classical generators and discriminators (Conv3D 3DGAN, Conv2D), plug-ins of qcalo's training loop."""
