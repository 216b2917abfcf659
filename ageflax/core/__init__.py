"""The core every layer may use: errors, age bands, devices and the mesh."""
