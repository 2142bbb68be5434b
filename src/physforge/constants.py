"""Named tolerances and limits, in one place (SI units)."""

#: |q| must be within this of 1 for a quaternion to count as unit length.
QUATERNION_NORM_TOLERANCE = 1e-6
#: An axis shorter than this cannot be normalised.
MIN_AXIS_NORM = 1e-9
#: Geometry sizes (m) below this count as zero-size.
MIN_GEOMETRY_SIZE = 1e-6
#: A mesh face whose area is below this fraction of (mesh extent)² counts as zero-area and is dropped.
MIN_FACE_AREA = 1e-12
#: Largest mesh accepted (faces); bigger meshes are refused with a message.
MAX_MESH_FACES = 2_000_000
#: Largest world JSON accepted (bytes).
MAX_WORLD_FILE_BYTES = 64 * 1024 * 1024
#: Largest voxel grid accepted (cells).
MAX_VOXEL_CELLS = 256**3
