"""The entry points: each module parses its flags and makes one call into the package.

TensorFlow reads this variable once, when it is first imported; every entry point imports
this package first, so the C++ start-up lines never reach a user's console.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
