"""c2c: PyTorch C2C fuser (C2CProjector), a small safetensors reader/writer and the c2c-web fuser format."""
