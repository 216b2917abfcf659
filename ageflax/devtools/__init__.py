"""Developer tools apart from the library core: benchmarks, synthetic faces, the data overview."""
