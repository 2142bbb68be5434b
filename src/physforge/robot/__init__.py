"""Robot learning from a physical world model (PhysWorld): reconstruct a scene from a first
RGB-D frame, track the demonstrated object motion, and learn object-centric residual policies
for a Franka Panda in simulation. Heavy parts (gymnasium, stable-baselines3) load lazily."""
