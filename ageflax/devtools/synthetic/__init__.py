"""Procedurally drawn synthetic faces (Pillow), for the quickstart and the tests."""
