"""mlbundle's runtime: what gets frozen into the application.

It reads a compiled scoring plan and its model record, validates input and
runs the compiled kernels. It imports numpy and the standard library only;
never the build tool, scikit-learn, scipy, joblib, pickle or numba (the
``jit`` backend imports numba lazily, and only in bundles built for it).
"""

__version__ = "0.1.0"
