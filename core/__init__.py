"""What every package of posestream shares and the light client may import: the errors (numpy-free, stdlib
only)."""
